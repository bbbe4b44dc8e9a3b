"""An allocation map: nodes by devices, each device coloured by the claim it is allocated to."""

from __future__ import annotations

import hashlib
import html
from typing import Any

CELL = 34
LABEL_WIDTH = 300
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]
FREE = "#eaeef2"


def _colour(claim: str) -> str:
    return PALETTE[int(hashlib.sha256(claim.encode()).hexdigest(), 16) % len(PALETTE)]


def render(slices: list[dict[str, Any]], claims: list[dict[str, Any]], title: str) -> str:
    """Return an SVG drawing of every node-local pool and the claim of each device."""
    holders: dict[tuple[str, str, str], str] = {}
    for claim in claims:
        allocation = (claim.get("status") or {}).get("allocation") or {}
        name = f"{claim['metadata'].get('namespace', '')}/{claim['metadata']['name']}"
        for result in (allocation.get("devices") or {}).get("results") or []:
            holders[(result["driver"], result["pool"], result["device"])] = name
    rows = []
    for item in sorted(slices, key=lambda s: (s["spec"].get("nodeName") or "", s["spec"]["driver"])):
        spec = item["spec"]
        devices = sorted((d["name"] for d in spec.get("devices") or []),
                         key=lambda n: (len(n), n))
        rows.append((spec.get("nodeName") or spec["pool"]["name"], spec["driver"],
                     spec["pool"]["name"], devices))
    width = LABEL_WIDTH + CELL * max([len(r[3]) for r in rows] + [1]) + 20
    legend = sorted(set(holders.values()))
    height = 40 + CELL * len(rows) + 22 * (len(legend) + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="4" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for row_index, (node, driver, pool, devices) in enumerate(rows):
        y = 30 + row_index * CELL
        parts.append(f'<text x="4" y="{y + 20}">{html.escape(node)} ({html.escape(driver)})'
                     f'</text>')
        for column, device in enumerate(devices):
            holder = holders.get((driver, pool, device))
            fill = _colour(holder) if holder else FREE
            x = LABEL_WIDTH + column * CELL
            tip = f"{device}: {holder or 'free'}"
            parts.append(f'<rect x="{x}" y="{y}" width="{CELL - 4}" height="{CELL - 4}" '
                         f'fill="{fill}" stroke="#8c959f"><title>{html.escape(tip)}</title></rect>'
                         f'<text x="{x + 3}" y="{y + 19}" font-size="9">{html.escape(device)}'
                         f'</text>')
    y = 40 + CELL * len(rows)
    for index, holder in enumerate(legend):
        parts.append(f'<rect x="4" y="{y + index * 22}" width="14" height="14" '
                     f'fill="{_colour(holder)}"/><text x="24" y="{y + index * 22 + 11}">'
                     f'{html.escape(holder)}</text>')
    parts.append(f'<rect x="4" y="{y + len(legend) * 22}" width="14" height="14" fill="{FREE}" '
                 f'stroke="#8c959f"/><text x="24" y="{y + len(legend) * 22 + 11}">free</text>')
    parts.append("</svg>")
    return "".join(parts)
