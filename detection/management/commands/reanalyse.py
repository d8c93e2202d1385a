import uuid

from django.core.management.base import BaseCommand, CommandError

from detection.jobs import reset_for_analysis
from detection.models import Item


def current_models() -> dict[str, str]:
    """The model whose probability decides each kind of item now (`name@version`, from the defaults in
    ml/weights/defaults.json, as the analyser chooses among them)."""
    from ml.errors import MissingWeightsError
    from ml.registry import deciding_refs

    try:
        return deciding_refs()
    except MissingWeightsError as exc:
        raise CommandError(f"Cannot tell which models are current: {exc}") from exc


class Command(BaseCommand):
    requires_system_checks = []  # re-queueing needs no weights; the worker's check reports missing ones
    help = (
        "Analyse items again: each selected item is reset to QUEUED (previous verdict, faces and heatmaps "
        "dropped, attempts back to 0; reviews kept) and its job is published to its queue. Items that "
        "are RUNNING right now are skipped."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("item_ids", nargs="*", metavar="ITEM_ID", help="Item ids (UUIDs) to re-analyse.")
        parser.add_argument("--all-failed", action="store_true", help="Every FAILED item.")
        parser.add_argument(
            "--model-changed",
            action="store_true",
            help="Every DONE item whose result came from another model than the current default for "
            "its kind (ml/weights/defaults.json, or ML_WEIGHTS_DIR as this process sees it).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be queued; change nothing."
        )

    def handle(
        self, *args, item_ids: list[str], all_failed: bool, model_changed: bool, dry_run: bool, **options
    ):
        if not (item_ids or all_failed or model_changed):
            raise CommandError("Name item ids, or pass --all-failed and/or --model-changed.")
        items = self.select(item_ids, all_failed, model_changed)
        if not items:
            self.stdout.write("No items to re-analyse.")
            return
        queued = skipped = 0
        for item in items:
            label = f"{item.pk} {item.get_kind_display().lower()} {item.original_name!r}"
            if item.status == Item.Status.RUNNING:
                skipped += 1
                self.stdout.write(f"skipped {label}: running now")
            elif dry_run:
                queued += 1
                self.stdout.write(f"would queue {label} (was {item.status})")
            elif reset_for_analysis(item):
                queued += 1
                self.stdout.write(f"queued {label} on '{item.queue_name}'")
            else:
                skipped += 1
                self.stdout.write(f"skipped {label}: it started running or was deleted meanwhile")
        verb = "would be queued" if dry_run else "queued for analysis"
        self.stdout.write(f"{queued} item(s) {verb}, {skipped} skipped.")

    def select(self, item_ids: list[str], all_failed: bool, model_changed: bool) -> list[Item]:
        wanted: dict[uuid.UUID, Item] = {}
        if item_ids:
            ids = []
            for raw in item_ids:
                try:
                    ids.append(uuid.UUID(raw))
                except ValueError:
                    raise CommandError(f"Not an item id: {raw!r}") from None
            found = Item.objects.in_bulk(ids)
            missing = [str(i) for i in ids if i not in found]
            if missing:
                raise CommandError(f"No item with id {', '.join(missing)}; nothing was changed.")
            wanted.update(found)
        if all_failed:
            wanted.update((item.pk, item) for item in Item.objects.filter(status=Item.Status.FAILED))
        if model_changed:
            models = current_models()
            self.stdout.write("Current models: " + ", ".join(f"{k} {v}" for k, v in sorted(models.items())))
            for item in Item.objects.filter(status=Item.Status.DONE):
                current = models.get(item.kind)
                if current and item.model_version != current:
                    wanted[item.pk] = item
        return sorted(wanted.values(), key=lambda item: item.created_at)
