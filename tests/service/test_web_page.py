"""The web page end to end in headless Chromium: a real uvicorn server on 127.0.0.1, a real
browser, a real upload. Needs Debian's ``chromium`` (``.ci/run`` installs it) and Playwright
for Python (no downloaded browser: it drives /usr/bin/chromium)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stylesearch.service import Settings, create_app

CHROMIUM = os.environ.get("STYLESEARCH_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(built_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    index = tmp_path_factory.mktemp("web") / "index"
    shutil.copytree(built_index, index)
    app = create_app(Settings(index=str(index), device="cpu", api_keys="k"))  # type: ignore[call-arg]
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        yield pg
        context.close()
        browser.close()


SAME_STYLE = "document.querySelector('#results-title').textContent.startsWith('Same style as')"


def _open(page, server: str) -> None:  # type: ignore[no-untyped-def]
    """The page's start view, loaded."""
    page.goto(server + "/")
    page.wait_for_selector("#results .card")


def _search(page, photo: Path) -> None:  # type: ignore[no-untyped-def]
    """Pick ``photo`` and wait for its same-style results."""
    page.set_input_files("#file", str(photo))
    page.wait_for_function(SAME_STYLE)


def test_upload_a_photo_see_its_style_and_neighbours_then_click_one(page, server: str, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    held_out = demo_data[1]
    query, style, _ = held_out[3]
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: console_errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    page.goto(server + "/")
    page.wait_for_selector("#results .card")  # the start view: items of each style to click
    assert "96 items" in page.inner_text("#index-summary")

    page.set_input_files("#file", str(query))
    page.wait_for_selector("#verdict:not([hidden])")
    page.wait_for_function("document.querySelector('#results-title').textContent.startsWith('Same style as')")
    assert page.inner_text("#style-label") == style
    assert page.locator("#evidence .card").count() == 10
    labels = page.locator("#results .card .label").all_inner_texts()
    assert len(labels) == 12 and labels.count(style) >= 6
    page.screenshot(path=os.environ.get("STYLESEARCH_SCREENSHOT", str(tmp_path / "search.png")), full_page=True)

    # the images the grid shows really load
    assert page.evaluate(
        "[...document.querySelectorAll('#results img')].slice(0, 4).every(i => i.complete && i.naturalWidth > 0)"
    )

    # click "More like this" on the first result: its neighbours replace the grid
    first_id = page.locator("#results .card").first.get_attribute("data-id")
    page.locator("#results .card .more").first.click()
    page.wait_for_function(f"document.querySelector('#results-title').textContent === 'More like {first_id}'")
    ids = page.locator("#results .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert len(ids) == 12 and first_id not in ids

    # filter by an attribute: only mugs
    page.select_option("#filter-key", "product")
    page.select_option("#filter-value", "mug")
    page.wait_for_function(
        "[...document.querySelectorAll('#results .card')].length > 0 && "
        "[...document.querySelectorAll('#results .card')].every(c => c.title.includes('product: mug'))"
    )
    assert not console_errors, console_errors


def test_a_photo_unlike_the_catalog_gets_a_banner(page, built_index: Path, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The banner follows the answer's out_of_catalog: shown for a photo below the floor (a
    server whose floor every photo is under), hidden again for the next photo that is not."""
    import uvicorn

    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    servers = []
    for floor in (1.0, 0.0):
        app = create_app(Settings(index=str(index), device="cpu", min_familiarity=floor))  # type: ignore[call-arg]
        port = _free_port()
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not srv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        servers.append((srv, thread, f"http://127.0.0.1:{port}"))
    query = str(demo_data[1][0][0])
    from PIL import Image

    odd = tmp_path / "noise.png"  # random pixels: nothing in the catalog is like them
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(odd)
    try:
        page.goto(servers[0][2] + "/")
        page.wait_for_selector("#results .card")
        assert not page.is_visible("#ooc-banner")
        page.set_input_files("#file", str(odd))
        page.wait_for_selector("#ooc-banner:not([hidden])")
        assert "looks like nothing in this catalog" in page.inner_text("#ooc-banner")
        assert "looks like nothing in this catalog" in page.inner_text("#style-label")
        page.screenshot(path=os.environ.get("STYLESEARCH_SCREENSHOT_OOC", str(tmp_path / "ooc.png")), full_page=True)
        page.goto(servers[1][2] + "/")
        page.wait_for_selector("#results .card")
        page.set_input_files("#file", query)
        page.wait_for_function("document.querySelector('#results-title').textContent.startsWith('Same style as')")
        assert not page.is_visible("#ooc-banner")
        assert "of the 10 nearest labelled items are" in page.inner_text("#style-evidence")
    finally:
        # leave these servers' page before stopping them: the page is shared with the next
        # tests, and its pending image loads would fail there as connection errors
        page.goto("about:blank")
        for srv, thread, _ in servers:
            srv.should_exit = True
            thread.join(timeout=30)


def test_mood_board_pins_two_items_pushes_one_away_and_groups(page, server: str) -> None:  # type: ignore[no-untyped-def]
    import json
    import urllib.request

    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: console_errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(server + "/")
    page.wait_for_selector("#results .card")
    cards = page.locator("#results .card")
    first = cards.nth(0).get_attribute("data-id")
    cards.nth(0).locator(".pin").click()
    page.wait_for_function("document.querySelector('#results-title').textContent === 'Mood board: 1 pinned, 0 pushed away'")
    page.locator("#results .card .pin").first.click()  # a result of the one-item board
    page.wait_for_function("document.querySelector('#results-title').textContent.startsWith('Mood board: 2 pinned')")
    pinned = page.locator("#board-items .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert len(pinned) == 2 and first in pinned
    page.locator("#results .card .push").first.click()
    page.wait_for_function("document.querySelector('#results-title').textContent === 'Mood board: 2 pinned, 1 pushed away'")
    board_ids = page.locator("#board-items .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert len(board_ids) == 3 and page.locator("#board-items .card.negative").count() == 1
    shown = page.locator("#results .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert shown and not set(shown) & set(board_ids)  # the examples themselves are left out

    # the page asks what the API answers for the same board
    weights = page.locator("#board-items .card").evaluate_all(
        "cards => cards.map(c => [c.dataset.id, c.classList.contains('negative') ? -0.5 : 1])"
    )
    body = json.dumps({"examples": [{"item": i, "weight": w} for i, w in weights], "k": 12}).encode()
    request = urllib.request.Request(server + "/v1/board", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        expected = [item["id"] for item in json.load(response)["results"]]
    assert shown == expected

    # one result per product: grouped results carry distinct groups
    page.select_option("#group-by", "product")
    page.wait_for_function(
        "(() => { const g = [...document.querySelectorAll('#results .card')].map(c => c.dataset.group);"
        " return g.length > 0 && g.every(Boolean) && new Set(g).size === g.length; })()"
    )
    assert page.locator("#results .card").count() <= 6
    page.click("#board-clear")
    assert page.locator("#board").is_hidden()
    assert not console_errors, console_errors


def test_collapse_hides_copies_and_why_explains_a_result(page, server: str, demo_data) -> None:  # type: ignore[no-untyped-def]
    import httpx

    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    query = Path(demo_data[1][7][0])
    copies = ["copy-a", "copy-b"]
    for item_id in copies:  # the same photo indexed twice: near-duplicates of each other
        r = httpx.post(
            server + "/v1/items",
            files={"file": (query.name, query.read_bytes(), "image/png")},
            data={"id": item_id},
            headers={"Authorization": "Bearer k"},
        )
        assert r.status_code == 201, r.text
    try:
        page.goto(server + "/")
        page.wait_for_selector("#results .card")
        page.set_input_files("#file", str(query))
        page.wait_for_function("document.querySelector('#results-title').textContent.startsWith('Same style as')")
        shown = page.locator("#results .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
        assert set(shown[:2]) == set(copies)
        page.check("#collapse")
        page.wait_for_function(
            "(() => { const ids = [...document.querySelectorAll('#results .card')].map(c => c.dataset.id);"
            " return ids.length > 0 && ids.filter(i => i.startsWith('copy-')).length === 1; })()"
        )

        # why? on the first result: both photos with their heat maps, and the blocks' shares
        page.locator("#results .card .why").nth(1).click()
        page.wait_for_selector("#explain:not([hidden])")
        assert page.locator("#explain-blocks .bar").count() == 5  # one bar per style block: 3, 5, 8, 11, 15
        assert int(page.get_attribute("#explain-query-heat", "data-cells")) > 0
        assert int(page.get_attribute("#explain-item-heat", "data-cells")) > 0
        assert "Similarity" in page.inner_text("#explain-score")
        page.click("#explain-close")
        assert page.locator("#explain").is_hidden()
        page.uncheck("#collapse")
    finally:
        for item_id in copies:
            httpx.delete(f"{server}/v1/items/{item_id}", headers={"Authorization": "Bearer k"})
    assert not console_errors, console_errors


def test_why_draws_each_photo_at_its_own_aspect_ratio(page, server: str, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import io

    from PIL import Image

    source = Image.open(demo_data[1][3][0]).convert("RGB")
    portrait = tmp_path / "portrait.jpg"
    source.resize((60, 90)).save(portrait, format="JPEG", quality=95)  # a 2:3 product photo
    _open(page, server)
    _search(page, portrait)
    page.locator("#results .card .why").first.click()
    page.wait_for_selector("#explain:not([hidden])")
    page.wait_for_function("document.querySelector('#explain-query').naturalWidth > 0")
    box = page.locator("#explain-query").bounding_box()
    heat = page.locator("#explain-query-heat").bounding_box()
    assert box is not None and heat is not None
    assert box["height"] / box["width"] == pytest.approx(90 / 60, rel=0.03)  # not stretched to a square
    assert (heat["width"], heat["height"]) == pytest.approx((box["width"], box["height"]), abs=1)  # the overlay covers it
    item = page.locator("#explain-item").bounding_box()
    natural = page.evaluate(
        "[document.querySelector('#explain-item').naturalWidth, document.querySelector('#explain-item').naturalHeight]"
    )
    assert item is not None and item["height"] / item["width"] == pytest.approx(natural[1] / natural[0], rel=0.03)
    values = page.locator("#explain-blocks .bar-value").all_inner_texts()
    assert len(values) == 5 and all(" sd" in v for v in values)  # each block against a typical catalog pair
    page.screenshot(path=str(tmp_path / "why-portrait.png"))
    assert io.BytesIO((tmp_path / "why-portrait.png").read_bytes()).getbuffer().nbytes > 0
    page.click("#explain-close")


def test_the_api_docs_render_with_the_network_blocked(page, server: str) -> None:  # type: ignore[no-untyped-def]
    blocked: list[str] = []

    def only_the_server(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith(server):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    try:
        page.goto(server + "/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        assert page.locator(".opblock").count() >= 10  # the operations, rendered by Swagger UI from the package
        assert "stylesearch" in page.title()
        page.goto(server + "/redoc")
        page.wait_for_selector("[role=menuitem], .menu-content", timeout=30_000)
        assert "/v1/search" in page.content() or "search" in page.inner_text("body").lower()
    finally:
        page.unroute("**/*")
    # nothing the docs need comes from elsewhere (ReDoc's bundle asks its CDN for its own small logo only)
    assert not [url for url in blocked if not url.endswith(".svg")], blocked


def _cards_fit(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Text or buttons that spill out of their card (element boxes), as 'id: what'."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.card')].flatMap((card) => {
            const box = card.getBoundingClientRect();
            return [...card.querySelectorAll('span, button')].filter((el) => {
                const r = el.getBoundingClientRect();
                if (!r.width && !r.height) return false;  // not shown
                return r.left < box.left - 1 || r.right > box.right + 1 || el.scrollWidth > el.clientWidth + 1;
            }).map((el) => `${card.dataset.id}: ${el.className} '${el.textContent}'`);
        })"""
    )


def test_states_reset_what_they_invalidate(page, server: str, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    query = Path(demo_data[1][5][0])
    page.set_viewport_size({"width": 1280, "height": 900})
    _open(page, server)
    page.screenshot(path=str(tmp_path / "start-1280.png"))
    # the same file twice: the second pick is a new search, after "More like this" changed the title
    _search(page, query)
    page.locator("#results .card .more").first.click()
    page.wait_for_function("document.querySelector('#results-title').textContent.startsWith('More like')")
    _search(page, query)
    # cards say what they show; the slider says its value
    assert page.locator("#results .card .attrs").first.inner_text().startswith("product: ")
    assert page.inner_text("#diversity-value") == "0.0"
    page.screenshot(path=str(tmp_path / "search-1280.png"))
    # grouping: a header per group, in front of its cards
    page.select_option("#group-by", "label")
    page.wait_for_selector("#results .group-header")
    headers = page.locator("#results .group-header").all_inner_texts()
    assert headers and all(h.startswith("label: ") for h in headers) and len(set(headers)) == len(headers)
    page.screenshot(path=str(tmp_path / "grouped-1280.png"))
    page.select_option("#group-by", "")
    page.wait_for_function("!document.querySelector('#results .group-header')")
    # a failed upload leaves no old results under an old title
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a photo at all")
    page.set_input_files("#file", str(bad))
    page.wait_for_function("document.querySelector('#status').classList.contains('error')")
    assert page.locator("#results .card").count() == 0 and "broken.jpg" in page.inner_text("#results-title")
    # the mood board's Clear resets its results; later changes do not bring back a stale answer
    page.set_input_files("#file", str(query))
    page.wait_for_selector("#results .card .pin")
    page.locator("#results .card .pin").first.click()
    page.wait_for_function("document.querySelector('#results-title').textContent.startsWith('Mood board:')")
    page.screenshot(path=str(tmp_path / "board-1280.png"))
    page.click("#board-clear")
    page.wait_for_function("document.querySelector('#results-title').textContent === 'Mood board'")
    assert page.locator("#results .card").count() == 0 and page.locator("#board").is_hidden()
    page.select_option("#group-by", "label")
    page.fill("#diversity", "0.5")
    page.dispatch_event("#diversity", "change")
    assert page.locator("#results .card").count() == 0 and "Pin at least one" not in page.inner_text("#status")
    page.select_option("#group-by", "")
    page.fill("#diversity", "0")
    page.dispatch_event("#diversity", "input")


def test_scores_shown_are_positive_and_cards_hold_their_text(page, server: str, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    query = Path(demo_data[1][9][0])
    for width in (1280, 420):
        page.set_viewport_size({"width": width, "height": 900})
        _open(page, server)
        _search(page, query)
        page.locator("#results .card .pin").first.click()
        page.wait_for_function("document.querySelector('#results-title').textContent.startsWith('Mood board: 1 pinned')")
        page.locator("#results .card .push").nth(2).click()
        page.wait_for_function("document.querySelector('#results-title').textContent.includes('1 pushed away')")
        page.wait_for_function("!document.querySelector('#status').textContent.startsWith('Searching')")
        assert not _cards_fit(page), _cards_fit(page)
        if width == 420:  # the first results are on screen, above the verdict
            top = page.locator("#results .card").first.bounding_box()
            assert top is not None and top["y"] < 900, top
        page.screenshot(path=str(tmp_path / f"board-{width}.png"), full_page=True)
        page.click("#board-clear")
        for label in page.eval_on_selector_all("#filter-key option", "o => o.map(x => x.value)")[1:2]:
            page.select_option("#filter-key", label)
            for value in page.eval_on_selector_all("#filter-value option", "o => o.map(x => x.value)")[1:]:
                page.set_input_files("#file", str(query))
                page.select_option("#filter-value", value)
                page.wait_for_function("!document.querySelector('#status').textContent.startsWith('Searching')")
                scores = [float(s) for s in page.locator("#results .card .score").all_inner_texts() if s.strip()]
                assert all(s > 0 for s in scores), (value, scores)
        page.select_option("#filter-key", "")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_screenshots_of_each_view_at_both_widths(page, server: str, demo_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """start, search, grouped, mood board and why at 1,280 and 420 px, saved for a person to look at."""
    query = Path(demo_data[1][12][0])
    for width in (1280, 420):
        page.set_viewport_size({"width": width, "height": 900})
        _open(page, server)
        page.screenshot(path=str(tmp_path / f"start-{width}.png"))
        _search(page, query)
        page.screenshot(path=str(tmp_path / f"search-{width}.png"), full_page=True)
        page.select_option("#group-by", "product")
        page.wait_for_selector("#results .group-header")
        page.screenshot(path=str(tmp_path / f"grouped-{width}.png"), full_page=True)
        page.select_option("#group-by", "")
        page.locator("#results .card .why").first.click()
        page.wait_for_selector("#explain:not([hidden])")
        page.screenshot(path=str(tmp_path / f"why-{width}.png"))
        page.click("#explain-close")
        page.locator("#results .card .pin").first.click()
        page.wait_for_function("document.querySelector('#results-title').textContent.startsWith('Mood board:')")
        page.screenshot(path=str(tmp_path / f"board-{width}.png"), full_page=True)
        assert not _cards_fit(page), _cards_fit(page)
        page.click("#board-clear")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert len(list(tmp_path.glob("*.png"))) == 10
