"""Every label the UI shows, in one table. Chinese is the default; English is available."""
from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "title": {"zh": "城市运行数字驾驶舱", "en": "City Operations Cockpit"},
    "last_30_days": {"zh": "近30天", "en": "Last 30 days"},
    "volume": {"zh": "办件量", "en": "Volume"},
    "closure_rate": {"zh": "办结率", "en": "Closure rate"},
    "on_time_rate": {"zh": "及时率", "en": "On-time rate"},
    "satisfaction_rate": {"zh": "满意率", "en": "Satisfaction rate"},
    "districts": {"zh": "各区", "en": "Districts"},
    "store_unavailable": {"zh": "数据暂不可用", "en": "Data unavailable"},
    "language": {"zh": "English", "en": "中文"},
    "city": {"zh": "市", "en": "City"},
    "district": {"zh": "区", "en": "District"},
    "street": {"zh": "街道", "en": "Street"},
    "community": {"zh": "社区", "en": "Community"},
    "grid": {"zh": "网格", "en": "Grid"},
    "events": {"zh": "件", "en": "events"},
}

LANGS = ("zh", "en")


def t(key: str, lang: str = "zh") -> str:
    entry = LABELS[key]
    return entry.get(lang) or entry["zh"]
