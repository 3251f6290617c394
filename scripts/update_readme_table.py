"""Regenerate README.md's suite table from the registry and docs/bench_envs.json.

Run after `memrl bench envs --seconds 2 --json docs/bench_envs.json` (or after adding an env):
    python scripts/update_readme_table.py
"""

import json
import re
from pathlib import Path

from memrl.envs.table import suite_table

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- suite-table:start -->", "<!-- suite-table:end -->"

readme = ROOT / "README.md"
bench = json.loads((ROOT / "docs" / "bench_envs.json").read_text())
table = suite_table(markdown=True, bench_rows=bench["results"])
machine = bench["machine"]
caption = (
    f"Steps/s: `{bench['command']}` on {machine['cores']} cores ({machine['cpu']}), "
    f"{machine['date'][:10]}; single = one env through `gymnasium.make` (wrappers included), "
    "batched = the numpy vector entry point, pre-drawn random actions, resets included."
)
text = readme.read_text()
pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
readme.write_text(pattern.sub(f"{START}\n{table}\n\n{caption}\n{END}", text))
print(f"updated {readme}")
