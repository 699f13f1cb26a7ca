"""The HTTPS application server over the services (``scorer server``): see app.py."""
