from tests.builders import ok


def test_a_receipt_shows_up_in_stock_and_the_ledger(catalog, warehouse):
    item = catalog.item()
    shelf = catalog.location()
    receipt = catalog.receive(item, shelf, 10, unit_cost="2.5000", lot="A1")
    assert receipt["total_cost"] == "25.0000"
    rows = ok(warehouse.get("/stock", item_id=item["id"]))["items"]
    assert [(r["lot"], r["on_hand"], r["available"]) for r in rows] == [("A1", 10, 10)]
    moves = ok(warehouse.get("/movements", item_id=item["id"]))["items"]
    assert moves[0]["from"]["type"] == "supplier"
