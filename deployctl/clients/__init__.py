"""Clients for the outside APIs, created by `deployctl.settings.Settings`."""
