from pathlib import Path

HELP = "Overlay a fully convolutional run's class heatmap on an image and save it as PNG."


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory trained with head.kind=fcn")
    parser.add_argument("image", type=Path, help="the image to explain")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="PNG to write (never overwritten; default: heatmap_<image>_<class>.png in the run)")
    parser.add_argument("--class", dest="class_name", default=None, metavar="NAME",
                        help="the class to show (default: the predicted class)")


def run(args) -> int:
    from podium.core.rundir import RUN_KEYS, check_run
    from podium.files import check_output_file
    from podium.vision.interpret.heatmap import write_heatmap

    check_run(args.run_dir, model=True, keys=RUN_KEYS, metrics=True)
    if args.out is not None:
        check_output_file(args.out, "--out")

    result = write_heatmap(args.run_dir, args.image, out=args.out, class_name=args.class_name)
    print(f"{result['class']} (p={result['probability']:.3f} from the image alone): {result['path']}")
    return 0
