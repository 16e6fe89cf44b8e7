"""The console's pages, one blueprint per area, server-rendered from templates/."""
