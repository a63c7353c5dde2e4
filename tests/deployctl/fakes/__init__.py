"""Local fakes of Railway, GitHub, Telegram and the app's health endpoint,
all driven by one simulated world and clock (see `world.py`)."""
