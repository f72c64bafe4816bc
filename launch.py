"""Start the embedgui app: python launch.py [--host 127.0.0.1] [--port 7860] [--share]. Also the Spaces app file."""

from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    on_spaces = bool(os.environ.get("SPACE_ID"))
    default_host = "0.0.0.0" if on_spaces else "127.0.0.1"  # Spaces routes traffic to the container's port
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", default_host))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--workspace", default=None, help="folder for data and runs (default ./workspace)")
    parser.add_argument("--hosted", action="store_true", help="hosted-mode restrictions (automatic on Spaces)")
    args = parser.parse_args(argv)
    if args.hosted:  # every layer asks is_hosted() (e.g. a run folder's trust_remote_code is never honoured)
        os.environ["EMBEDGUI_HOSTED"] = "1"
    # Once per process: the Train tab shows the run's INFO lines; runs never change this shared level.
    logging.getLogger("embedgui").setLevel(logging.INFO)

    from embedgui.ui.app import create_app, launch_kwargs
    from embedgui.ui.context import AppContext

    ctx = AppContext.create(args.workspace, hosted=True if args.hosted else None)
    if ctx.hosted:  # after the workspace is resolved against the working directory it leaves
        from embedgui.engine.hosted import protect_process

        protect_process()
    demo = create_app(ctx)
    print(f"embedgui: workspace {ctx.workspace}{' (hosted mode)' if ctx.hosted else ''}", file=sys.stderr)
    demo.queue(default_concurrency_limit=4).launch(server_name=args.host, server_port=args.port, share=args.share,
                                                    **launch_kwargs(ctx))
    return 0


if __name__ == "__main__":
    sys.exit(main())
