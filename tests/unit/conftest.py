"""Make the roles' filter plugins importable as plain modules."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "roles" / "redis" / "filter_plugins"))
sys.path.insert(0, str(ROOT / "roles" / "firewall" / "filter_plugins"))
sys.path.insert(0, str(ROOT / "roles" / "redis_sentinel" / "filter_plugins"))
sys.path.insert(0, str(ROOT / "roles" / "cache_app" / "filter_plugins"))
