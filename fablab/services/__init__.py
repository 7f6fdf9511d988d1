"""One module per feature (bookings, windows, waitlist, effort, usage, designs, fairness, kiosk, ...): load
through the database session, call the domain, persist, and nothing else. Pages, the API and the worker
call these; services never import web, api or worker code. Cross-feature reactions are not wired here by
import side effects but in `fablab/wiring.py`."""
