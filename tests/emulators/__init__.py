"""In-process stand-ins for cloud services keyward talks to, speaking their real wire protocols."""
