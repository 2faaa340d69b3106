"""`make demo`'s command works against a configured broker and prints every result."""

import subprocess
import sys
import uuid


def test_demo_prints_every_result(broker, tmp_path):
    run = uuid.uuid4().hex[:8]
    env = {"LABELSTREAM_BROKER": broker, "LABELSTREAM_APP_ID": f"ls-demo-{run}",
           "LABELSTREAM_TOPIC_PREFIX": f"d{run}.", "LABELSTREAM_TOPIC_PARTITIONS": "2", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "app.cli", "demo", "--timeout", "90"], env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.strip().startswith("knn ") for line in lines) == 12
    assert sum(line.strip().startswith("zeroshot ") for line in lines) == 4
    assert "16 results, 16 as expected" in out.stdout
    assert "action=block" in out.stdout
