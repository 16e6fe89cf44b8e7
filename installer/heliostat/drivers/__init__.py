"""Target drivers: each implements `heliostat.driver.Driver` for one target (docs/drivers.md)."""
