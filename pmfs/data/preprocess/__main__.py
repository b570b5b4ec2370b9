"""`python -m pmfs.data.preprocess {mead,cremad} --root RAW --out CACHE [...]`."""

import sys

from pmfs.data.preprocess import main

sys.exit(main())
