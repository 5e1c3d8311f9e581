"""The local stack's parts: one module per component, and the processes they run as."""
