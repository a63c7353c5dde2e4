"""The sandbox chat page: one HTML page and the small JSON API it polls."""
