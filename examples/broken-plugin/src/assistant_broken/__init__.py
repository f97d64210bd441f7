"""Deliberately broken assistant plugins (a test fixture). Importing the package itself works."""
