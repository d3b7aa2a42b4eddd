"""Badge images: a small, self-contained SVG per badge type.

A medal in the badge's palette with its catalogue icon (``bag``, ``leaf``,
``calendar``, ``people``, ``tier-*``; anything else gets a star), the on-chain
name on a ribbon, and a padlock when the badge is soulbound.  Pure string work:
no fonts, images or scripts are referenced, so the SVG is safe to serve as an
image and renders the same everywhere.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

#: (outer ring, inner disc) colours per icon.
PALETTES: dict[str, tuple[str, str]] = {
    "bag": ("#b45309", "#f59e0b"),
    "leaf": ("#15803d", "#4ade80"),
    "calendar": ("#1d4ed8", "#60a5fa"),
    "people": ("#7e22ce", "#c084fc"),
    "tier-silver": ("#64748b", "#cbd5e1"),
    "tier-gold": ("#a16207", "#facc15"),
    "tier-platinum": ("#0f766e", "#99f6e4"),
    "tier-black": ("#0f172a", "#475569"),
    "star": ("#be123c", "#fb7185"),
}

#: Icon drawings on a 100x100 grid centred at (50, 50), white strokes.
ICONS: dict[str, str] = {
    "bag": (
        '<rect x="28" y="40" width="44" height="36" rx="5"/>'
        '<path d="M38 40 v-6 a12 12 0 0 1 24 0 v6"/>'
    ),
    "leaf": ('<path d="M30 72 C30 40 50 28 72 28 C72 52 60 72 30 72 Z"/><path d="M30 72 L58 42"/>'),
    "calendar": (
        '<rect x="28" y="32" width="44" height="40" rx="4"/>'
        '<path d="M28 44 h44 M40 26 v12 M60 26 v12"/>'
        '<path d="M38 58 l6 6 l12 -12"/>'
    ),
    "people": (
        '<circle cx="40" cy="40" r="8"/><circle cx="62" cy="42" r="6"/>'
        '<path d="M26 72 a14 14 0 0 1 28 0 M54 70 a10 10 0 0 1 20 0"/>'
    ),
    "star": '<path d="M50 26 L57 43 L75 44 L61 56 L66 74 L50 64 L34 74 L39 56 L25 44 L43 43 Z"/>',
    "gem": '<path d="M32 42 L42 30 H58 L68 42 L50 72 Z M32 42 H68 M44 42 L50 72 L56 42"/>',
}
for _tier in ("silver", "gold", "platinum", "black"):
    ICONS[f"tier-{_tier}"] = ICONS["gem"]

_LOCK = (
    '<g transform="translate(196 30)" aria-label="soulbound">'
    '<circle r="20" fill="#111827" stroke="#fff" stroke-width="3"/>'
    '<rect x="-8" y="-3" width="16" height="12" rx="2" fill="#fff"/>'
    '<path d="M-5 -3 v-4 a5 5 0 0 1 10 0 v4" fill="none" stroke="#fff" stroke-width="3"/>'
    "</g>"
)


def badge_svg(name: str, icon: str, *, soulbound: bool, description: str = "") -> str:
    """The SVG document of a badge: medal, icon, ``name`` on a ribbon, lock if soulbound."""
    ring, disc = PALETTES.get(icon, PALETTES["star"])
    drawing = ICONS.get(icon, ICONS["star"])
    label = name if len(name) <= 28 else name[:27] + "…"
    font_size = 22 if len(label) <= 12 else max(12, int(22 * 12 / len(label)))
    title = escape(name)
    desc = f"<desc>{escape(description)}</desc>" if description else ""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 240" width="240" '
        f'height="240" role="img" aria-label="{escape(name, {chr(34): "&quot;"})}">'
        f"<title>{title}</title>{desc}"
        f'<circle cx="120" cy="104" r="92" fill="{ring}"/>'
        f'<circle cx="120" cy="104" r="76" fill="{disc}" stroke="#ffffff" stroke-opacity=".6" '
        'stroke-width="3"/>'
        '<g transform="translate(70 54)" fill="none" stroke="#ffffff" stroke-width="5" '
        f'stroke-linecap="round" stroke-linejoin="round">{drawing}</g>'
        f'<path d="M20 178 H220 L206 200 L220 222 H20 L34 200 Z" fill="{ring}" '
        'stroke="#ffffff" stroke-width="2"/>'
        f'<text x="120" y="{200 + font_size // 3}" text-anchor="middle" fill="#ffffff" '
        f'font-family="system-ui, sans-serif" font-weight="700" font-size="{font_size}">'
        f"{escape(label)}</text>" + (_LOCK if soulbound else "") + "</svg>"
    )
