"""A minimal ``gfx`` for one script: a window flag, recorded drawing, injectable mouse clicks and keys.

Drawing is recorded per frame (between two ``gfx.update()`` calls); ``last_frame`` holds the frame the
user would see. Text is measured as ``CHAR_W`` pixels per character and ``LINE_H`` pixels high.
``gfx.init("", w, h)`` on an open window resizes it and keeps its title (REAPER's documented way to
resize; verify in REAPER); the user can only click inside the window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

CHAR_W = 8
LINE_H = 16
MOUSE_LEFT = 1


@dataclass(frozen=True)
class Drawn:
    kind: str  # "text" or "rect"
    x: float
    y: float
    w: float
    h: float
    text: str = ""
    filled: bool = False

    def contains(self, x: float, y: float) -> bool:
        return self.x <= x < self.x + self.w and self.y <= y < self.y + self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


class FakeGfx:
    def __init__(self) -> None:
        self.table = None  # the script's Lua ``gfx`` table, bound by ScriptInstance
        self.open = False
        self.title = ""
        self.inits = 0
        self.resizes: list[tuple[int, int]] = []
        self.frames = 0
        self.ops: list[Drawn] = []
        self.last_frame: list[Drawn] = []
        self.mouse_events: deque[tuple[float, float, int]] = deque()
        self.chars: deque[int] = deque()

    def functions(self) -> dict:
        return {
            "init": self.init,
            "quit": self.quit,
            "update": self.update,
            "getchar": self.getchar,
            "rect": self.rect,
            "drawstr": self.drawstr,
            "set": self.set,
            "measurestr": self.measurestr,
        }

    # -- gfx.* ----------------------------------------------------------------------------------

    def init(self, name="", width=0, height=0, dockstate=0, xpos=0, ypos=0):
        if self.open and str(name) == "":
            if width or height:
                self.table.w, self.table.h = int(width or self.table.w), int(height or self.table.h)
                self.resizes.append((self.table.w, self.table.h))
            return 1
        self.open = True
        self.title = str(name)
        self.inits += 1
        self.table.w, self.table.h = int(width or 0), int(height or 0)
        return 1

    def quit(self):
        self.open = False

    def update(self):
        self.last_frame, self.ops = self.ops, []
        self.frames += 1

    def getchar(self, char=None):
        if not self.open:
            return -1
        return self.chars.popleft() if self.chars else 0

    def set(self, r, g=None, b=None, a=1.0, mode=0, dest=None, a2=None):
        self.table.r, self.table.g, self.table.b, self.table.a = r, r if g is None else g, r if b is None else b, a

    def rect(self, x, y, w, h, filled=True):
        self.ops.append(Drawn("rect", x, y, w, h, filled=bool(filled) and filled != 0))

    def measurestr(self, text):
        return float(len(str(text)) * CHAR_W), float(LINE_H)

    def drawstr(self, text, flags=0, right=None, bottom=None):
        text = str(text)
        w, h = self.measurestr(text)
        x, y = self.table.x or 0, self.table.y or 0
        self.ops.append(Drawn("text", x, y, w, h, text=text))
        self.table.x = x + w

    # -- input injected by tests, applied one event per tick --------------------------------------

    def feed_input(self) -> None:
        if self.mouse_events:
            x, y, cap = self.mouse_events.popleft()
            self.table.mouse_x, self.table.mouse_y, self.table.mouse_cap = x, y, cap

    def click(self, x: float, y: float) -> None:
        w, h = self.table.w or 0, self.table.h or 0
        if not (0 <= x < w and 0 <= y < h):
            raise AssertionError(f"({x}, {y}) is outside the {w}x{h} window: the user cannot click there")
        self.mouse_events.append((x, y, MOUSE_LEFT))
        self.mouse_events.append((x, y, 0))

    def texts(self) -> list[str]:
        return [d.text for d in self.last_frame if d.kind == "text"]

    def find_text(self, needle: str) -> list[Drawn]:
        return [d for d in self.last_frame if d.kind == "text" and needle in d.text]
