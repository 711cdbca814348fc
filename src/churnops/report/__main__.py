"""``python -m churnops.report``: compile the report's templates into ``compiled/`` (after editing one)."""

import shutil
import tempfile
from pathlib import Path

from churnops.report.html import ENVIRONMENT_OPTIONS, compiling_environment
from churnops.report.precompile import COMPILED, TEMPLATES, compile_into

with tempfile.TemporaryDirectory() as scratch:
    fresh = Path(scratch) / "compiled"
    compile_into(compiling_environment(), ENVIRONMENT_OPTIONS, fresh)
    if COMPILED.exists():
        shutil.rmtree(COMPILED)
    shutil.copytree(fresh, COMPILED)
print(f"compiled {', '.join(TEMPLATES)} into {COMPILED}")
