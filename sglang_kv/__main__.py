from sglang_kv.cli import main

raise SystemExit(main())
