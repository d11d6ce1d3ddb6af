"""python -m train: train a zoo model on a dataset, or print a model's summary.

    python -m train --model pilotnet --data road --epochs 10 --out runs/pilotnet
    python -m train --model cifar_cnn --summary
    python -m train --model mobilenetv2 --data folder:photos --weights mobilenet_v2_..._96_no_top.h5 \
        --fine-tune 30 --out runs/photos                      # transfer learning (train/backbones.py)
    python -m train --model detector --backbone mobilenetv2 --weights mobilenet_v2_..._1.0_224_no_top.h5 \
        --data yolo:cones --out runs/cones                    # a detector on a pretrained backbone
    python -m train --model freespace --backbone mobilenetv2 --weights mobilenet_v2_..._1.0_224_no_top.h5 \
        --out runs/freespace-mnv2                             # the free-space U-Net on the same
    python -m train --model pilotnet --data road --epochs 10 --out runs/pilotnet --resume   # after a kill
    python -m train --model pilotnet --data drivelog:logs/track1,logs/track2 --augment --out runs/track
    python -m train --model cifar_cnn --data cifar10:cifar-10-python.tar.gz --strategy mirrored --out runs/c10
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys

from runtime.cli import ArgumentParser, main, positive_float, positive_int

from runtime.errors import UserError, printable, require
from runtime.images import utf8

from . import (backbones, checkpoints, datasets, distribute, drivelog, load_tensorflow, models, pipeline, run_dir,
               trainer)


def build_parser():
    parser = ArgumentParser(prog="python -m train", description=__doc__.split("\n\n")[0])
    _add_run_options(parser)
    _add_pipeline_options(parser.add_argument_group("input pipeline"))
    _add_device_options(parser.add_argument_group("devices"))
    _add_transfer_options(parser.add_argument_group("transfer learning (%s, and the detector and freespace with "
                                                    "--backbone)" % ", ".join(backbones.BACKBONES)))
    return parser


def _add_run_options(parser):
    """What to train, on what, for how long, and where the run goes."""
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="one of: " + ", ".join("%s (%s)" % (n, s.about) for n, s in models.ZOO.items()))
    parser.add_argument("--data", metavar="DATASET",
                        help="one of: %s (default: digits for classifiers, road for pilotnet)"
                             % ", ".join(datasets.NAMES))
    parser.add_argument("--epochs", type=positive_int, default=10, metavar="N", help="default 10")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="default 32")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="at most N training examples (road: generate N frames; default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="for the split, the road and the weights")
    parser.add_argument("--road-views", choices=("recovery", "centred"), default="recovery",
                        help="road: views shifted and rotated off the lane centre, labelled to steer back "
                             "(recovery, PilotNet's augmentation; the default), or only near the centre (centred)")
    parser.add_argument("--out", metavar="RUN_DIR", help="where the model, history, plot and metadata go")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="go on with the run in RUN_DIR from its last finished epoch (a checkpoint is written "
                            "after every epoch in RUN_DIR/checkpoints), with the same settings")
    again.add_argument("--force", action="store_true", help="start over in a RUN_DIR that holds a run")
    parser.add_argument("--early-stopping", type=positive_int, metavar="N",
                        help="stop when the validation loss has not improved for N epochs, and keep the best "
                             "epoch's weights")
    parser.add_argument("--reduce-lr", type=positive_int, metavar="N",
                        help="halve the learning rate when the validation loss has not improved for N epochs")
    parser.add_argument("--summary", action="store_true", help="print the Keras summary and exit")


def _add_pipeline_options(data):
    """Augmentation, the in-memory cache, and how a driving log's steering is read."""
    data.add_argument("--augment", nargs="?", const="default", metavar="KINDS",
                      help="augment the training batches (not the model): a comma list of %s; alone: %s for "
                           "steering, %s for classifiers" % ("|".join(pipeline.KINDS),
                                                             ",".join(pipeline.AUGMENT["steering"]),
                                                             ",".join(pipeline.AUGMENT["classification"])))
    data.add_argument("--shift-correction", type=float, metavar="S",
                      help="with --augment shift: the steering (in the labels' units) that a view moved right by "
                           "10%% of its width calls for; it depends on the camera (README), so give it (the "
                           "procedural road: 0.49)")
    data.add_argument("--cache-mb", type=positive_int, default=1024, metavar="MB",
                      help="images read from disk are kept in memory at the network's size when they fit in MB "
                           "(default 1024), else decoded again each epoch")
    data.add_argument("--side-correction", type=float, metavar="S",
                      help="drivelog: use the side cameras, their steering corrected by S in the log's units "
                           "(default %g; 0 leaves them out)" % drivelog.SIDE_CORRECTION)
    data.add_argument("--steering-units", choices=drivelog.UNITS, default="normalised",
                      help="drivelog: what the log's steering is in, written into the manifest (default "
                           "normalised, as Udacity's simulator and DonkeyCar record it)")
    data.add_argument("--steering-radius", type=positive_float, metavar="M",
                      help="drivelog: the turning radius in metres that a steering of 1 makes, written into the "
                           "manifest (inverse_radius_per_unit = 1/M), so that runtime drive and the control link's "
                           "inverse_radius know the car's units (synthetic://road's driver: 10)")


def _add_device_options(scale):
    """tf.distribute's strategy, mixed precision and TensorBoard."""
    scale.add_argument("--strategy", choices=distribute.STRATEGIES, default="default",
                       help="tf.distribute: one device, mirrored over this machine's GPUs, or multiworker across "
                            "machines (TF_CONFIG); --batch-size is the global batch")
    scale.add_argument("--cpu-replicas", type=positive_int, metavar="N",
                       help="--strategy mirrored without a GPU: split the CPU into N devices (to try it)")
    scale.add_argument("--mixed-precision", action="store_true",
                       help="the mixed_float16 policy on GPUs (output kept float32; the saved model is float32)")
    scale.add_argument("--tensorboard", action="store_true", help="TensorBoard logs in RUN_DIR/tensorboard")


def _add_transfer_options(group):
    """The backbones' weights, input size and fine-tuning (train/backbones.py)."""
    group.add_argument("--backbone", metavar="NAME", choices=sorted(backbones.MAPS),
                       help="--model detector or freespace: its encoder is this keras.applications backbone's first "
                            "blocks, with the backbone's input scaling (%s; default: its own small encoder)"
                            % ", ".join(backbones.MAPS))
    group.add_argument("--weights", metavar="PATH",
                       help="ImageNet weights for the backbone, a .h5/.keras file downloaded from Keras's storage "
                            "(e.g. %s); default: random weights, every layer trained"
                            % backbones.BACKBONES["mobilenetv2"].weight_files)
    group.add_argument("--image-size", type=positive_int, metavar="N",
                       help="input N x N, at least %d (default: %s)" % (backbones.MIN_SIZE, ", ".join(
                           "%s %d" % (n, b.size) for n, b in backbones.BACKBONES.items())))
    group.add_argument("--fine-tune", type=positive_int, metavar="N",
                       help="with --weights: after the head has trained on the frozen backbone (--epochs), unfreeze "
                            "the backbone's last N layers (BatchNormalization stays frozen) and train on at "
                            "learning rate %g" % backbones.FINE_TUNE_LR)
    group.add_argument("--fine-tune-epochs", type=positive_int, metavar="N",
                       help="epochs of the fine-tuning phase (default: as many as --epochs)")


def _augment_kinds(given, task):
    """--augment's kinds, checked."""
    if given is None:
        return ()
    if given == "default":
        return pipeline.AUGMENT["steering" if task == "steering" else "classification"]
    kinds = tuple(k.strip() for k in given.split(",") if k.strip())
    unknown = [k for k in kinds if k not in pipeline.KINDS]
    if unknown or not kinds:
        raise UserError("--augment %s: choose from %s (a comma list)" % (given, ", ".join(pipeline.KINDS)))
    return kinds


def _configured_spec(args):
    """The zoo entry for --model, configured with the transfer-learning options (the backbones, and --backbone
    for the detector and the free-space network)."""
    spec = models.get(args.model)
    transfer = (args.weights, args.image_size, args.fine_tune, args.fine_tune_epochs)
    if args.backbone is not None and not isinstance(spec, backbones.FirstBlocks):
        raise UserError("--backbone is for --model detector|freespace (their encoder); a classifier on a backbone is "
                        "a model of its own: --model %s" % "|".join(backbones.BACKBONES))
    if isinstance(spec, backbones.BackboneSpec):
        spec = spec.configure(args.image_size, args.weights, args.fine_tune, args.fine_tune_epochs)
    elif isinstance(spec, backbones.FirstBlocks):
        if args.image_size is not None:
            raise UserError("--image-size is for the classifiers' backbones (%s): the %s's input is %dx%d"
                            % (", ".join(backbones.BACKBONES), spec.NOUN, spec.size[0], spec.size[1]))
        spec = spec.configure(args.backbone, args.weights, args.fine_tune, args.fine_tune_epochs)
    elif any(v is not None for v in transfer):
        raise UserError("--weights, --image-size and --fine-tune are for the backbones (%s) and --model "
                        "detector|freespace --backbone, not %s" % (", ".join(backbones.BACKBONES), spec.name))
    return spec


def _print_summary(spec):
    """--summary: the Keras summary of the untrained model (and a backbone's plan)."""
    load_tensorflow()
    model = spec.build()
    if spec.backbone is not None:
        print(spec.describe(), file=sys.stderr)
    model.summary()


def _checked_data(args, spec):
    """--data (or the model's default), checked with the options that only some datasets take."""
    data = args.data or spec.default_data
    if data is None:
        raise UserError("%s needs a two-class image folder: --data folder:PATH (one subfolder per class)"
                        % spec.name)
    datasets.check(data, spec)
    if args.road_views != "recovery" and data != "road":
        raise UserError("--road-views is for --data road")
    is_log = data.startswith("drivelog:")
    for flag, given in (("--side-correction", args.side_correction is not None),
                        ("--steering-units", args.steering_units != "normalised"),
                        ("--steering-radius", args.steering_radius is not None)):
        if given and not is_log:
            raise UserError("%s is for --data drivelog:PATH" % flag)
    return data


def _checked_augment(args, spec):
    """--augment's kinds, checked with --shift-correction."""
    augment = _augment_kinds(args.augment, spec.task)
    if args.shift_correction is not None and "shift" not in augment:
        raise UserError("--shift-correction is for --augment with shift")
    if "shift" in augment and args.shift_correction is None:
        raise UserError("--augment shift needs --shift-correction S: the steering a view moved right by 10%% of "
                        "its width calls for (it depends on the camera; README, \"Augmentation\")")
    return augment


def _check_out(out):
    """--out must be a folder (or nothing yet) whose name is UTF-8."""
    if not utf8(out):  # TensorFlow's file functions (samples, TensorBoard) take UTF-8 names only
        raise UserError("--out %s: give a run folder whose name is UTF-8 (TensorFlow writes into it, and its "
                        "file functions take UTF-8 names only)" % printable(out))
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError("--out %s exists and is not a folder" % out)


def _settings(args, data):
    """The options a --resume must repeat (train/checkpoints.py keeps them in the checkpoint)."""
    settings = {k: getattr(args, k) for k in ("model", "data", "limit", "seed", "batch_size", "road_views",
                                              "image_size", "backbone", "weights", "fine_tune", "fine_tune_epochs",
                                              "early_stopping", "reduce_lr", "augment", "shift_correction",
                                              "side_correction", "steering_units", "steering_radius", "strategy",
                                              "cpu_replicas",
                                              "mixed_precision")}
    settings["data"] = data
    return settings


def _claim_run_dir(args, spec, settings):
    """--resume: the checkpoint must fit these settings; else a run already in --out needs --force, which
    clears its checkpoint."""
    if args.resume:
        checkpoints.check_resume(args.out, settings, trainer.phases_of(spec, args.epochs))  # before any work
    elif not args.force and run_dir.holds_a_run(args.out):
        state = checkpoints.read_state(args.out) if os.path.isdir(checkpoints.folder(args.out)) else None
        raise UserError("%s holds a training run already%s: give --resume to go on with it, --force to start "
                        "over, or another --out" % (args.out, " (%d epochs in its checkpoint)" % state["epochs"]
                                                    if state else ""))
    if args.force:
        shutil.rmtree(checkpoints.folder(args.out), ignore_errors=True)  # another run's checkpoint would not fit


def _devices(args):
    """TensorFlow loaded; (the tf.distribute strategy or None, whether mixed precision is on)."""
    tf = load_tensorflow()
    strategy = distribute.configure(args.strategy, args.cpu_replicas)  # before TensorFlow's first op
    mixed = args.mixed_precision
    if mixed and not tf.config.list_physical_devices("GPU"):
        print("note: --mixed-precision has no benefit on a CPU (no float16 arithmetic to gain): training in "
              "float32", file=sys.stderr)
        mixed = False
    return strategy, mixed


def _load_dataset(args, data, spec):
    """The dataset, its notes on stderr."""
    print("loading %s for %s" % (printable(data), spec.name), file=sys.stderr)
    side = drivelog.SIDE_CORRECTION if args.side_correction is None else args.side_correction
    dataset = datasets.load(data, spec, limit=args.limit, seed=args.seed, road_views=args.road_views,
                            side_correction=side or None, steering_units=args.steering_units,
                            steering_radius=args.steering_radius)
    for note in dataset.notes:
        print(note, file=sys.stderr)
    return dataset


def _interrupted(stop, out):
    """What a Ctrl-C or SIGTERM left, on stderr; the exit status (130 for Ctrl-C, 143 for SIGTERM)."""
    print("stopped by %s; %s" % ("SIGTERM" if stop.signum == signal.SIGTERM else "Ctrl-C",
                                 "the last finished epoch (%d) is in %s: go on with the same command and "
                                 "--resume" % (stop.epochs, checkpoints.folder(out)) if stop.epochs else
                                 "no epoch had finished, nothing was saved"), file=sys.stderr)
    return 128 + stop.signum


def _main(argv):
    args = build_parser().parse_args(argv)
    spec = _configured_spec(args)
    if args.summary:
        _print_summary(spec)
        return 0
    if not args.out:
        raise UserError("--out RUN_DIR is required to train (or give --summary)")
    data = _checked_data(args, spec)
    distribute.check(args.strategy, args.cpu_replicas)  # before any work
    if args.tensorboard:
        require("tensorboard", "train", "--tensorboard")
    augment = _checked_augment(args, spec)
    _check_out(args.out)
    settings = _settings(args, data)
    _claim_run_dir(args, spec, settings)
    strategy, mixed = _devices(args)
    if spec.backbone is not None:
        if spec.weights is not None:
            spec.build_base()  # a weights file that does not fit is one line before any work is done
        print(spec.describe(), file=sys.stderr)

    dataset = _load_dataset(args, data, spec)
    if strategy is not None and args.batch_size % strategy.num_replicas_in_sync:
        raise UserError("--batch-size %d does not split over %d replicas: give a multiple of %d"
                        % (args.batch_size, strategy.num_replicas_in_sync, strategy.num_replicas_in_sync))
    options = trainer.Options(augment=augment, shift_correction=args.shift_correction or 0.0, cache_mb=args.cache_mb,
                              strategy=strategy, mixed_precision=mixed, tensorboard=args.tensorboard)
    try:
        trained = trainer.train(spec, dataset, args.out, args.epochs, args.batch_size, seed=args.seed,
                                settings=settings, resume=args.resume, early_stopping=args.early_stopping,
                                reduce_lr=args.reduce_lr, options=options)
    except trainer.Interrupted as stop:
        return _interrupted(stop, args.out)
    run_dir.write(args.out, spec, dataset, trained)
    print("held out: %s" % json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                       for k, v in trained.held_out.items()}), file=sys.stderr)
    print("wrote %s (model.keras, history.json, training.png, summary.txt, meta.json, samples/, checkpoints/)"
          % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main("python -m train", _main))
