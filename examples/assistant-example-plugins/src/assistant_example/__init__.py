"""Example plugins for the offline assistant, one of each kind.

Each module is imported only when its plugin is loaded (entry points name
``module:factory``), so importing this package costs nothing.
"""

__version__ = "0.1.0"
