"""The topic catalog in topics/ must be exactly what the pydantic models generate."""

import json

from app.topics import CATALOG, SPECS, TOPICS_DIR, render


def test_every_catalog_topic_has_a_file_matching_the_models():
    for spec in SPECS:
        path = TOPICS_DIR / f"{spec.name}.json"
        assert path.exists(), f"{path} missing: run 'labelstream topics export'"
        assert path.read_text() == render(spec), f"{path} is stale: run 'labelstream topics export'"


def test_no_stray_topic_files():
    names = {p.stem for p in TOPICS_DIR.glob("*.json")}
    assert names == set(CATALOG)


def test_training_and_workers_are_compacted_and_others_delete():
    docs = {p.stem: json.loads(p.read_text()) for p in TOPICS_DIR.glob("*.json")}
    assert docs["training"]["cleanup_policy"] == docs["workers"]["cleanup_policy"] == "compact"
    assert {d["cleanup_policy"] for n, d in docs.items() if n not in ("training", "workers")} == {"delete"}


def test_value_schemas_name_the_reference_fields():
    objects = CATALOG["objects"].value_schema()
    assert {"id", "class", "properties", "vector"} <= set(objects["properties"])
    media = CATALOG["media"].value_schema()
    assert {"media_id", "index_id", "kind", "mimetype", "duration", "width", "height", "segments"} <= set(media["properties"])
    seg = media["$defs"]["Segment"]["properties"]
    assert {"start", "end", "option", "vector", "text", "thumbnail_url"} <= set(seg)
