HELP = "List the registered competition plugins."


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from podium.competitions import get, names

    for name in names():
        plugin = get(name)
        print(f"{name:40s} kaggle: {plugin.slug:45s} task: {plugin.task}")
    return 0
