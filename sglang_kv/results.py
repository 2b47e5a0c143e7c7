"""Result files under ``results/``: every measured figure travels with its provenance.

Each JSON records the exact command, the git commit, the machine, the date, the workload and the
measured figures, so a number quoted in the README can be traced and re-run. The record is built by
:mod:`text2json.provenance` (one implementation for both packages).
"""

from text2json.provenance import machine, result_record, write_result

__all__ = ["machine", "result_record", "write_result"]
