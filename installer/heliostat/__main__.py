from heliostat.cli import main

main()
