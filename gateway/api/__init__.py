"""HTTP API: routers, dependencies, error translation."""
