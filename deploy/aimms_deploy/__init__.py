"""Local infrastructure (Kafka, FerretDB, SMTP sink) and deployment commands for AIMMS."""

__version__ = "0.1.0"
