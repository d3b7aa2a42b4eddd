"""Domain services: the gateway's logic, free of HTTP."""
