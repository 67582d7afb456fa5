"""Write each role's README.md from its argument specs (meta/argument_specs.yml), as
`ansible-doc -t role` reads them, with the defaults of defaults/main.yml;
tests/unit/test_role_readmes.py checks they are up to date.

    python docs/role_readmes.py          # rewrite roles/*/README.md
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = "redis_cache.stack"


def _text(value) -> str:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return " ".join(str(value or "").split()).replace("|", "\\|")


def _default(option: dict, defaults: dict, name: str) -> str:
    value = option.get("default", defaults.get(name))
    if value is None:
        return ""
    shown = json.dumps(value)
    return f"`{shown}`" if len(shown) <= 60 else "see defaults/main.yml"


def _options_table(options: dict, defaults: dict) -> list[str]:
    lines = ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, option in sorted(options.items()):
        kind = option.get("type", "str")
        if option.get("elements"):
            kind += f" of {option['elements']}"
        if option.get("required"):
            kind += " **required**"
        default = _default(option, defaults, name)
        lines.append(f"| `{name}` | {kind} | {default} | {_text(option.get('description'))} |")
    return lines


def render(role: str) -> str:
    shown = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-doc"),
            "-t",
            "role",
            "--json",
            f"{COLLECTION}.{role}",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    doc = json.loads(shown.stdout)[f"{COLLECTION}.{role}"]
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    main_options = doc["entry_points"]["main"].get("options") or {}
    lines = [
        f"# Role `{COLLECTION}.{role}`",
        "",
        "Generated from `meta/argument_specs.yml` and `defaults/main.yml` by",
        f"`docs/role_readmes.py`; `ansible-doc -t role {COLLECTION}.{role}` shows the same.",
    ]
    entries = sorted(doc["entry_points"].items(), key=lambda item: item[0] != "main")
    for name, entry in entries:
        call = "the role" if name == "main" else f"`tasks_from: {name}`"
        lines += [
            "",
            f"## Entry point `{name}` ({call})",
            "",
            _text(entry.get("short_description")),
        ]
        for paragraph in entry.get("description") or []:
            lines += ["", _text(paragraph)]
        options = entry.get("options") or {}
        if name != "main" and options == main_options:
            lines += ["", "Options: those of the main entry point."]
        elif options:
            lines += ["", *_options_table(options, defaults)]
        else:
            lines += ["", "No options."]
    return "\n".join(lines) + "\n"


def roles() -> list[str]:
    return sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta").is_dir())


if __name__ == "__main__":
    for name in roles():
        (ROOT / "roles" / name / "README.md").write_text(render(name))
