"""WebShop as web pages: the same sessions over HTTP, and a purchase in headless Chromium."""

import re
import shutil
import urllib.parse
import urllib.request

import pytest

from agentgym.cli import build_parser
from agentgym.envs.webshop.server import BackgroundServer

N = 300


@pytest.fixture(scope="module")
def server():
    with BackgroundServer(num_products=N) as s:
        yield s


def _post(url, **fields):
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data)) as r:
        return r.geturl(), r.read().decode()


def _get(url):
    with urllib.request.urlopen(url) as r:
        return r.geturl(), r.read().decode()


def _observation(html):
    import html as h
    return h.unescape(re.search(r'<pre class="observation" id="observation">(.*?)</pre>',
                                html, re.S).group(1))


def test_http_session_plays_the_environment(server):
    _, index = _get(server.url + "/")
    assert "goal 0" in index and "price lower than" in index
    session, page = _get(server.url + "/start?goal=1")
    assert re.search(r"/s/[0-9a-f]{12}$", session)
    env = server.site.sessions[session.rsplit("/", 1)[1]]
    assert _observation(page) == env.shop.observation()
    assert 'id="search_input"' in page

    plan = env.walkthrough()
    for action in plan:
        if action.startswith("search["):
            _, page = _post(session, search_query=action[7:-1])
        else:
            # the page carries a button for exactly this action
            assert f'value="{action}"' in page.lower() or action.lower() in page.lower()
            _, page = _post(session, action=action)
        assert _observation(page) == env.shop.observation()
    assert 'id="score"' in page and env.shop.result.total == 1.0
    # an unknown action from a hand-made form changes nothing
    _, again = _post(session, action="click[nothing]")
    assert _observation(again) == _observation(page)


def test_bad_requests(server):
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(server.url + "/s/doesnotexist")
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(server.url + "/start?goal=abc")
    assert e.value.code == 400


def test_cli_has_webshop_serve():
    args = build_parser().parse_args(["webshop-serve", "num_products=500", "--port", "3111"])
    assert args.port == 3111 and args.kwargs == ["num_products=500"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs chromedriver")
def test_headless_chromium_buys_the_goal_product(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def click(element):
        """Click a submit button and return once the next page has replaced this one:
        a mark set on this page's window is gone, and the new document is loaded.
        (Waiting for the old <html> to go stale races with chromedriver, which can then
        fail with "Node with given id does not belong to the document".)"""
        driver.execute_script("window.__old_page = true")
        element.click()
        WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script(
                "return window.__old_page === undefined && document.readyState === 'complete'"))

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    if shutil.which("chromium"):
        options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(server.url + "/")
        click(driver.find_element(By.LINK_TEXT, "goal 0"))
        sid = driver.current_url.rsplit("/", 1)[1]
        env = server.site.sessions[sid]
        goal = env.shop.goal
        product = env.catalog.by_asin[goal.asin]
        assert len(goal.goal_options) == 2   # goal 0 of this catalogue: colour and size

        box = driver.find_element(By.ID, "search_input")
        box.send_keys(product.title.lower())
        click(driver.find_element(By.ID, "search_button"))
        # walk result pages until the goal product's link shows up
        for _ in range(5):
            links = driver.find_elements(By.XPATH, f"//button[text()='{goal.asin}']")
            if links:
                click(links[0])
                break
            click(driver.find_element(By.XPATH, "//button[text()='Next >']"))
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-page") == "item"
        for value in goal.goal_options:
            click(driver.find_element(By.XPATH, f"//button[@class='option' and text()='{value}']"))
            assert driver.find_elements(
                By.XPATH, f"//button[@class='option selected' and text()='{value}']")
        click(driver.find_element(By.XPATH, "//button[text()='Buy Now']"))
        assert driver.find_element(By.ID, "score").text == "1"
        assert "Thank you for shopping with us!" in driver.page_source
        assert env.shop.result.total == 1.0
    finally:
        driver.quit()
