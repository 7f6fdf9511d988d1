"""Firmware simulators (Marlin, GRBL) that talk on a pseudo-terminal exactly as the real boards do on a
serial port: for the demo and the tests, never for production."""
