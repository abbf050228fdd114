"""The memory budget's charge for a decode bounds what decoding really holds, measured in a
fresh process (peak resident size), for the JPEG kinds whose peaks differ most."""

import json
import subprocess
import sys

import pytest

from genadapt.imaging import decode_cost

MEASURE = """
import gc, io, json, resource, sys
import numpy as np
from PIL import Image
mode, progressive = sys.argv[1], sys.argv[2] == "1"
subsampling, side = int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
small = rng.integers(0, 255, (side // 16, side // 16, 3), np.uint8)
image = Image.fromarray(small).resize((side, side), Image.BILINEAR).convert(mode)
buf = io.BytesIO()
image.save(buf, format="JPEG", progressive=progressive, subsampling=subsampling, quality=90)
data = buf.getvalue()
del image, small
gc.collect()
from genadapt.imaging import decode_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
decode_image(data, draft_size=(1024, 512))
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
sys.stdout.buffer.write(json.dumps({"peak": peak, "hex": data.hex()}).encode())
"""


@pytest.mark.parametrize(
    "mode, progressive, subsampling",
    [("CMYK", True, 0), ("RGB", True, 0), ("RGB", False, 2)],
    ids=["progressive-cmyk", "progressive-444", "baseline-420"],
)
def test_the_charge_bounds_the_measured_peak(mode, progressive, subsampling):
    # 4000² is where the charge of a progressive CMYK JPEG fell short before its coefficient
    # buffer was counted (138 MB measured, 124 MB charged).
    args = [mode, str(int(progressive)), str(subsampling), "4000"]
    out = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, check=True)
    result = json.loads(out.stdout)
    charged = decode_cost(bytes.fromhex(result["hex"]), [(1024, 512)])
    assert result["peak"] <= charged, (result["peak"] / 2**20, charged / 2**20)
