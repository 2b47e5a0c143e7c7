"""scripts/pyspy_summary.py: counts of py-spy folded stacks."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pyspy_summary.py"
spec = importlib.util.spec_from_file_location("pyspy_summary", SCRIPT)
pyspy_summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pyspy_summary)

STACKS = """\
process 1:"launch";process 2:"sglang::scheduler";thread (0x1);run (s.py:10);forward (b.py:5);copy (h.py:107) 7
process 1:"launch";process 2:"sglang::scheduler";thread (0x1);run (s.py:10);forward (b.py:6) 2
process 1:"launch";process 2:"sglang::scheduler";thread (0x2);poll (z.py:3) 1
"""


def test_frame_name_folds_lines():
    assert pyspy_summary.frame_name("forward (sglang_kv/backend.py:257)") == "forward (sglang_kv/backend.py)"
    assert pyspy_summary.frame_name("<module> (<string>:1)") == "<module> (<string>)"


def test_summary_counts_inclusive_leaf_and_threads():
    text = pyspy_summary.summarize(STACKS.splitlines(), top=10, match=[])
    lines = text.splitlines()
    assert lines[0] == "10 samples"
    assert any(line.split()[0] == "9" and 'thread (0x1)' in line for line in lines)  # per thread
    inclusive = {line.split("%  ")[1]: int(line.split()[0])
                 for line in lines[lines.index("-- inclusive") + 1:lines.index("-- leaf")]}
    assert inclusive == {"forward (b.py)": 9, "run (s.py)": 9, "copy (h.py)": 7, "poll (z.py)": 1}
    leaf = lines[lines.index("-- leaf") + 1:]
    assert leaf[0].split()[0] == "7" and "copy (h.py:107)" in leaf[0]


def test_summary_match_filters_inclusive_frames():
    text = pyspy_summary.summarize(STACKS.splitlines(), top=10, match=["z.py"])
    inclusive = text.split("-- inclusive")[1].split("-- leaf")[0].strip().splitlines()
    assert len(inclusive) == 2 and "poll (z.py)" in inclusive[1]
