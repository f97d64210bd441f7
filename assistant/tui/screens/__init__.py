"""The screens, one per module: chat (main), document viewer, library, conversations,
settings, help and three small modals.

Screens read the Library through ``self.app.library`` and run anything that can
block in a thread worker. What a screen wants the app to do (open a source, switch
collections, show an error, apply settings) it posts upward as a typed message
(``..messages``); no screen imports the app.
"""

from .confirm import ConfirmScreen
from .conversations import ConversationsScreen
from .help import HelpScreen
from .library import LibraryScreen
from .main import MainScreen
from .path import PathScreen
from .prompt import PromptScreen
from .settings import SettingsScreen
from .viewer import ViewerScreen

__all__ = [
    "MainScreen",
    "ViewerScreen",
    "LibraryScreen",
    "ConversationsScreen",
    "SettingsScreen",
    "HelpScreen",
    "PromptScreen",
    "PathScreen",
    "ConfirmScreen",
]
