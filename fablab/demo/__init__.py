"""Everything demo, and nothing else: the demo lab's seeds (lab, history, designs, scheduling), the one-command
runner (`fablab demo`) and the embedded MQTT broker it starts when no Mosquitto is installed. Demo seeds go
through the same services and database constraints as real data; no other package imports this one except
the CLI."""

from .lab import DEMO_PASSWORD, demo_logins, seed

__all__ = ["DEMO_PASSWORD", "demo_logins", "seed"]
