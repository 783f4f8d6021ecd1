"""Built-in environment families. Registration is by entry-point string, so importing
agentgym does not import any environment's dependencies."""

from agentgym.prompting import PromptTemplate, register_template
from agentgym.registry import register

register(
    "agentgym/TextWorld-v0",
    entry_point="agentgym.envs.textworld.env:TextWorldEnv",
    kwargs={"family": "simple", "split": "train"},
    max_episode_steps=50,
    description="TextWorld games generated offline from seeds (families: simple, "
                "custom, cooking, treasure_hunter)",
)
register_template("agentgym/TextWorld-v0", PromptTemplate(
    # two worked examples whose goals are phrased unlike the commands: measured with
    # SmolLM2-135M at T 0.7 / top-p 0.9 on 16 training games, the first reply plays the
    # winning command 16 % of the time (3 % with one example that only shows the format)
    system="You play a text adventure game. Read the goal, then pick the one command from "
           "the list that does what the goal asks. Reply with that command exactly as "
           "written, inside <action></action>.\n"
           "Example 1:\nGoal: Make sure that the box is open.\n"
           "Commands: examine box, look, take key, open box, inventory\n"
           "Your command: <action>open box</action>\n"
           "Example 2:\nGoal: Put the cup on the shelf.\n"
           "Commands: drop cup, examine cup, examine shelf, inventory, look, put cup on shelf\n"
           "Your command: <action>put cup on shelf</action>",
    task="Goal: {task}",
    observation="{observation}",
    admissible="Commands: {actions}",
    instruction_plain="Your command:",
    instruction_think="Think briefly inside <think> </think>, then give your command as "
                      "<action>command</action>.",
))

register(
    "agentgym/WebShop-v0",
    entry_point="agentgym.envs.webshop.env:WebShopEnv",
    kwargs={"num_products": 1000, "split": "train"},
    max_episode_steps=15,
    description="WebShop rebuilt: search, browse and buy what an instruction asks for "
                "(generated catalogue, or the original data via data_dir)",
)
register_template("agentgym/WebShop-v0", PromptTemplate(
    system="You are shopping on a web store to buy the product the instruction asks for. "
           "Page text is shown with [SEP] between elements. Reply with exactly one action: "
           "search[keywords] on the search page, or click[button] where button is one of "
           "the clickable elements listed (a product ID, an option value, description, "
           "features, reviews, buy now, < prev, next >, back to search). Example: "
           "<action>search[sulfate free shampoo 16 fl oz]</action>, then "
           "<action>click[b0a1b2c3d4]</action>, <action>click[16 fl oz]</action>, "
           "<action>click[buy now]</action>.",
    task="Instruction: {task}",
    observation="Page: {observation}",
    admissible="Available actions: {actions}",
    # a 135M model copies this form and closes the tag; a bare "Your action:" it does not
    instruction_plain="Your action, written as <action>search[...]</action> or "
                      "<action>click[...]</action>:",
    instruction_think="Think briefly inside <think> </think>, then give your action as "
                      "<action>...</action>.",
))

register(
    "agentgym/ToolUse-v0",
    entry_point="agentgym.envs.tooluse.env:ToolUseEnv",
    kwargs={"source": "mixed", "split": "train"},
    max_episode_steps=8,
    max_action_chars=8_000,
    description="Tool use: reasoning-gym tasks and multi-hop search questions, answered "
                "with a sandboxed Python interpreter and BM25 search",
    programs=("unshare",),
)
register_template("agentgym/ToolUse-v0", PromptTemplate(
    system="You answer questions and may use tools. To run Python, reply "
           "<python>code</python>; to search the knowledge base, reply <search>query</search>; "
           "to answer, reply <answer>your answer</answer>. One tool call or answer per reply. "
           "Tool calls cost: answer directly when you can. Example: for 'What is 17*23?' reply "
           "<answer>391</answer>; for a question about an unknown company, reply "
           "<search>company name</search> first.",
    task="Question: {task}",
    observation="{observation}",
    instruction_plain="Your reply (<python>, <search> or <answer>):",
    instruction_think="Think briefly inside <think> </think>, then write one <python>, "
                      "<search> or <answer> block.",
    raw_action=True,
    stop=("</python>", "</search>", "</answer>"),
))

register(
    "agentgym/MiniWoB-v0",
    entry_point="agentgym.envs.miniwob.env:MiniWoBEnv",
    kwargs={"task": "click-test"},
    max_episode_steps=10,
    description="MiniWoB++ web tasks in headless Chromium (128 tasks; task=name, "
                "pattern or suite:NAME)",
    requires=("miniwob",), extra="miniwob",
    programs=("chromium|chromium-browser|google-chrome", "chromedriver"),
)
register_template("agentgym/MiniWoB-v0", PromptTemplate(
    system="You operate a web page to complete the instruction. The page is listed as "
           "elements: [ref] tag, text, value and position @ x,y width×height. Reply with "
           "exactly one action: click(ref), type(ref, \"text\") (clicks the field, then "
           "types), press(\"Enter\"), click_xy(x, y), drag(x1, y1, x2, y2), "
           "scroll(x, y, \"down\") or noop(). Example: for 'Enter \"Bob\" into the text "
           "field and press Submit' with [4] input_text and [6] button \"Submit\", reply "
           "<action>type(4, \"Bob\")</action>, then <action>click(6)</action>.",
    task="Task: {task}",
    observation="{observation}",
    admissible="Clickable: {actions}",
    instruction_plain="Your action:",
    instruction_think="Think briefly inside <think> </think>, then give your action as "
                      "<action>...</action>.",
))

register(
    "agentgym/ALFWorld-v0",
    entry_point="agentgym.envs.alfworld.env:ALFWorldEnv",
    kwargs={"split": "train"},
    max_episode_steps=50,
    description="ALFWorld household tasks (6 types) on the alfworld/textworld engine; "
                "suites generated offline from the package's scenes, or the official data",
    requires=("alfworld",), extra="alfworld",
)
register_template("agentgym/ALFWorld-v0", PromptTemplate(
    system="You are an expert agent acting in ALFRED, a simulated household. You move "
           "between receptacles, take and place objects, and use appliances to complete "
           "the task. Each turn you pick exactly one of the admissible actions.",
    task="Your task is to: {task}",
    history_header="Your last {n} steps (of {total} so far), oldest first:",
    history_step="Step {index} observation: {observation}\nStep {index} action: {action}",
    observation="You are now at step {index}. Current observation: {observation}",
    admissible="Admissible actions: [{actions}]",
    instruction_think="Reason step by step about the situation inside <think> </think>, "
                      "then give one admissible action inside <action> </action>.",
    instruction_plain="Give one admissible action inside <action> </action>.",
))

register(
    "agentgym/ScienceWorld-v0",
    entry_point="agentgym.envs.scienceworld.env:ScienceWorldEnv",
    kwargs={"task": "suite:all", "split": "train"},
    max_episode_steps=100,
    description="ScienceWorld's 30 science task types on the real simulator (task=name, "
                "pattern or suite:NAME; splits train/dev/test); needs Java",
)
register_template("agentgym/ScienceWorld-v0", PromptTemplate(
    system="You are an agent in ScienceWorld, a simulated house with a kitchen, workshop, "
           "greenhouse and more, where you do elementary science experiments. Actions: "
           "look around, inventory, go to LOCATION, open/close OBJ, pick up OBJ, put down "
           "OBJ, move OBJ to OBJ, pour OBJ into OBJ, mix OBJ, activate/deactivate OBJ, "
           "use OBJ on OBJ, look at OBJ, look in OBJ, read OBJ, eat OBJ, connect OBJ to OBJ, "
           "wait, focus on OBJ (only on what the task names: focusing on the wrong thing "
           "fails the task). When asked to choose, reply with the number. Reply with "
           "exactly one action, e.g. <action>open door to kitchen</action>.",
    task="Task: {task}",
    observation="{observation}",
    admissible="Some valid actions: {actions}",
    instruction_plain="Your action:",
    instruction_think="Think briefly inside <think> </think>, then give your action as "
                      "<action>...</action>.",
))
