"""Notifications' rules, free of I/O: which messages events cause, when one is ready to send, what an
SMTP answer means, and the coordinators' digest."""
