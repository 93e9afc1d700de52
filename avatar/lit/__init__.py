"""LightningModules (``<name>_module.py``): training wrappers around :mod:`avatar.modules`."""
