"""Vibration drivers: serial accelerometers (`accel_serial`), CSV and MAT-file replay."""
