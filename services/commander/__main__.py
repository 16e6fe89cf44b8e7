from commander.cli import main

main()
