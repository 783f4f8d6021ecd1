"""The word lists the catalogue generator draws from: categories, product types, attributes
and option values. Pure data; ``catalog.py`` turns it into products.

Each product type names its top-level category, its category path below it (joined with
" › " as in the original ``product_category``), the search query the original data would
file it under, its head nouns (what the type score compares), an attribute pool, option
pools and a price range in dollars.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProductType:
    name: str                          # "shampoo", "office chair"
    category: str                      # top level: beauty, food, fashion, furniture, electronics
    path: tuple[str, ...]              # category path below the department
    nouns: tuple[str, ...]             # head nouns of the type name
    attributes: tuple[str, ...]        # pool of product attributes
    options: tuple[tuple[str, tuple[str, ...]], ...]  # (option name, value pool)
    price: tuple[float, float]
    uses: tuple[str, ...] = ()         # "for dry hair": phrases for titles and bullets


DEPARTMENTS = {
    "beauty": "Beauty & Personal Care",
    "food": "Grocery & Gourmet Food",
    "fashion": "Clothing, Shoes & Jewelry",
    "furniture": "Home & Kitchen",
    "electronics": "Electronics",
}

COLORS = ("black", "white", "navy blue", "grey", "red", "green", "beige", "pink", "brown",
          "olive", "burgundy", "light blue", "khaki", "purple", "yellow", "teal", "charcoal",
          "ivory", "coral", "mint")
WOOD = ("walnut", "espresso", "white", "black", "natural oak", "grey", "rustic brown",
        "cherry")
APPAREL_SIZES = ("x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large")
SHOE_SIZES = ("5", "5.5", "6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11",
              "12", "13")
BED_SIZES = ("twin", "full", "queen", "king")
COUNTS = ("1 count", "2 count", "3 count", "4 count", "6 count", "12 count", "24 count")
PACKS = ("pack of 1", "pack of 2", "pack of 3", "pack of 4", "pack of 6", "pack of 12")
FLOZ = ("2 fl oz", "4 fl oz", "8 fl oz", "12 fl oz", "16 fl oz", "33.8 fl oz")
OUNCES = ("3 ounce", "6 ounce", "8 ounce", "12 ounce", "16 ounce", "1 pound", "2 pound",
          "5 pound")
CABLE_LEN = ("1 ft", "3 ft", "6 ft", "10 ft", "15 ft", "25 ft")
PHONES = ("iphone 13", "iphone 14", "iphone 14 pro max", "iphone 15", "galaxy s22",
          "galaxy s23 ultra", "pixel 7", "pixel 8 pro")
SCENTS = ("lavender", "coconut", "vanilla", "eucalyptus", "rose", "citrus", "unscented",
          "sandalwood", "tea tree", "cucumber melon")
HAIR_COLORS = ("jet black", "natural black", "dark brown", "medium brown", "ash blonde",
               "honey blonde", "platinum blonde", "auburn")
LIP_COLORS = ("ruby red", "nude pink", "berry", "coral", "mauve", "classic red", "plum",
              "rose gold", "peach", "wine")
COFFEE = ("dark roast", "medium roast", "light roast", "french roast", "hazelnut",
          "vanilla", "caramel", "decaf")
SNACK_FLAVORS = ("sea salt", "barbecue", "sour cream and onion", "salt and vinegar",
                 "jalapeno", "cheddar", "original", "honey mustard")
SWEET_FLAVORS = ("chocolate", "peanut butter", "strawberry", "cookies and cream", "mint",
                 "salted caramel", "blueberry", "mixed berry", "coconut", "almond")
TEA_FLAVORS = ("chamomile", "peppermint", "green tea", "earl grey", "ginger", "hibiscus",
               "lemon", "rooibos", "jasmine")


def _t(name, category, path, nouns, attributes, options, price, uses=()):
    return ProductType(name, category, tuple(path), tuple(nouns), tuple(attributes),
                       tuple((k, tuple(v)) for k, v in options), price, tuple(uses))


PRODUCT_TYPES: tuple[ProductType, ...] = (
    # ------------------------------------------------------------------ beauty
    _t("shampoo", "beauty", ["Hair Care", "Shampoo & Conditioner", "Shampoos"], ["shampoo"],
       ["sulfate free", "paraben free", "natural ingredients", "cruelty free", "hair growth",
        "color safe", "long lasting", "dermatologist tested"],
       [("size", FLOZ), ("scent", SCENTS)], (6, 38), ["for dry hair", "for damaged hair",
                                                       "for curly hair", "for all hair types"]),
    _t("conditioner", "beauty", ["Hair Care", "Shampoo & Conditioner", "Conditioners"],
       ["conditioner"],
       ["sulfate free", "paraben free", "natural ingredients", "cruelty free", "argan oil",
        "deep moisturizing", "silicone free"],
       [("size", FLOZ), ("scent", SCENTS)], (7, 36), ["for dry hair", "for frizzy hair"]),
    _t("hair extensions", "beauty", ["Hair Care", "Hair Extensions, Wigs & Accessories",
                                      "Extensions"], ["hair", "extensions"],
       ["clip in", "natural looking", "human hair", "heat resistant", "easy apply",
        "long lasting", "tangle free"],
       [("color", HAIR_COLORS), ("size", ("12 inch", "14 inch", "16 inch", "18 inch",
                                          "20 inch", "22 inch"))], (15, 120),
       ["for women", "for thin hair"]),
    _t("lipstick", "beauty", ["Makeup", "Lips", "Lipstick"], ["lipstick"],
       ["long lasting", "highly pigmented", "cruelty free", "paraben free", "easy apply",
        "matte finish", "waterproof"],
       [("color", LIP_COLORS), ("size", PACKS[:4])], (5, 28), ["for women", "for daily wear"]),
    _t("nail polish", "beauty", ["Foot, Hand & Nail Care", "Nail Art & Polish", "Nail Polish"],
       ["nail", "polish"],
       ["long lasting", "quick dry", "non toxic", "cruelty free", "easy apply", "gel finish"],
       [("color", LIP_COLORS + ("black", "white", "teal")), ("size", PACKS[:3])], (4, 22)),
    _t("eyeshadow palette", "beauty", ["Makeup", "Eyes", "Eyeshadow"], ["eyeshadow", "palette"],
       ["highly pigmented", "long lasting", "cruelty free", "easy blend", "waterproof",
        "paraben free"],
       [("color", ("nude", "smoky", "rose gold", "warm brown", "rainbow", "bronze"))], (8, 55)),
    _t("face moisturizer", "beauty", ["Skin Care", "Face", "Moisturizers"],
       ["face", "moisturizer"],
       ["hyaluronic acid", "fragrance free", "oil free", "sensitive skin", "anti aging",
        "non comedogenic", "natural ingredients", "spf 30"],
       [("size", ("1.7 fl oz", "2 fl oz", "3.4 fl oz", "4 fl oz"))], (9, 65),
       ["for dry skin", "for oily skin", "for sensitive skin"]),
    _t("body lotion", "beauty", ["Skin Care", "Body", "Moisturizers"], ["body", "lotion"],
       ["shea butter", "fragrance free", "natural ingredients", "paraben free", "dry skin",
        "long lasting", "cruelty free"],
       [("size", FLOZ), ("scent", SCENTS)], (5, 30), ["for dry skin", "for sensitive skin"]),
    _t("makeup brush set", "beauty", ["Tools & Accessories", "Makeup Brushes & Tools",
                                       "Brush Sets"], ["makeup", "brush", "set"],
       ["synthetic bristles", "easy clean", "high quality", "cruelty free", "travel size",
        "soft bristles"],
       [("color", ("rose gold", "black", "pink", "white", "silver", "purple")),
        ("size", ("5 pieces", "10 pieces", "12 pieces", "16 pieces"))], (8, 45)),
    _t("perfume", "beauty", ["Fragrance", "Women's", "Eau de Parfum"], ["perfume"],
       ["long lasting", "travel size", "natural ingredients", "floral scent", "fresh scent"],
       [("size", ("1 fl oz", "1.7 fl oz", "3.4 fl oz")), ("scent", SCENTS)], (18, 140),
       ["for women", "for men"]),
    _t("electric toothbrush", "beauty", ["Oral Care", "Toothbrushes & Accessories",
                                          "Power Toothbrushes"], ["toothbrush"],
       ["rechargeable", "long battery life", "sensitive teeth", "smart timer", "travel case",
        "waterproof"],
       [("color", ("black", "white", "pink", "blue", "rose gold"))], (20, 110),
       ["for adults", "for kids"]),
    # ------------------------------------------------------------------ food
    _t("coffee beans", "food", ["Beverages", "Coffee, Tea & Cocoa", "Coffee"],
       ["coffee", "beans"],
       ["usda organic", "fair trade", "non gmo", "low acid", "gluten free", "whole bean",
        "single origin"],
       [("flavor name", COFFEE), ("size", OUNCES[3:])], (8, 45)),
    _t("herbal tea", "food", ["Beverages", "Coffee, Tea & Cocoa", "Tea"], ["tea"],
       ["caffeine free", "usda organic", "non gmo", "gluten free", "natural ingredients",
        "kosher certified"],
       [("flavor name", TEA_FLAVORS), ("size", ("20 count", "40 count", "100 count"))],
       (4, 25)),
    _t("protein bars", "food", ["Snacks & Sweets", "Bars", "Protein Bars"],
       ["protein", "bars"],
       ["high protein", "gluten free", "low sugar", "keto friendly", "non gmo", "low carb",
        "plant based"],
       [("flavor name", SWEET_FLAVORS), ("size", COUNTS[3:])], (10, 48)),
    _t("potato chips", "food", ["Snacks & Sweets", "Chips & Crisps", "Potato Chips"],
       ["potato", "chips"],
       ["gluten free", "non gmo", "kettle cooked", "no artificial flavors", "vegan",
        "individually wrapped"],
       [("flavor name", SNACK_FLAVORS), ("size", PACKS)], (3, 30)),
    _t("beef jerky", "food", ["Snacks & Sweets", "Jerky & Dried Meats", "Jerky"],
       ["beef", "jerky"],
       ["high protein", "gluten free", "low sugar", "grass fed", "keto friendly",
        "no artificial ingredients"],
       [("flavor name", ("original", "teriyaki", "peppered", "sweet and spicy", "smoked",
                         "hot")), ("size", OUNCES[:6])], (6, 40)),
    _t("olive oil", "food", ["Pantry Staples", "Cooking & Baking", "Oils"], ["olive", "oil"],
       ["extra virgin", "cold pressed", "usda organic", "non gmo", "single origin",
        "kosher certified"],
       [("size", ("16.9 fl oz", "25.4 fl oz", "33.8 fl oz", "68 fl oz"))], (7, 42)),
    _t("dark chocolate", "food", ["Snacks & Sweets", "Chocolate", "Chocolate Bars"],
       ["chocolate"],
       ["fair trade", "usda organic", "non gmo", "low sugar", "dairy free", "vegan",
        "individually wrapped"],
       [("flavor name", ("sea salt", "almond", "orange", "mint", "raspberry", "72% cacao",
                         "85% cacao")), ("size", PACKS)], (4, 36)),
    _t("gummy candy", "food", ["Snacks & Sweets", "Candy", "Gummy Candy"], ["candy"],
       ["gluten free", "fat free", "individually wrapped", "natural flavors", "vegan",
        "kosher certified"],
       [("flavor name", ("sour", "fruit", "cherry", "watermelon", "peach", "mixed berry")),
        ("size", OUNCES[:7])], (3, 25)),
    _t("granola", "food", ["Breakfast Foods", "Cereals", "Granola"], ["granola"],
       ["whole grain", "gluten free", "non gmo", "low sugar", "high protein", "usda organic"],
       [("flavor name", ("honey almond", "maple pecan", "chocolate", "vanilla", "berry",
                         "coconut")), ("size", OUNCES[2:7])], (4, 24)),
    _t("pasta sauce", "food", ["Pantry Staples", "Sauces", "Pasta Sauces"],
       ["pasta", "sauce"],
       ["no sugar added", "non gmo", "gluten free", "usda organic", "low sodium", "vegan"],
       [("flavor name", ("marinara", "tomato basil", "arrabbiata", "garlic", "vodka",
                         "roasted pepper")), ("size", PACKS[:5])], (4, 28)),
    # ------------------------------------------------------------------ fashion
    _t("t-shirt", "fashion", ["Men", "Clothing", "Shirts", "T-Shirts"], ["t-shirt", "shirt"],
       ["machine wash", "cotton spandex", "short sleeve", "slim fit", "moisture wicking",
        "long sleeve", "crew neck", "relaxed fit"],
       [("color", COLORS), ("size", APPAREL_SIZES)], (8, 35), ["for men", "for women"]),
    _t("hoodie", "fashion", ["Women", "Clothing", "Fashion Hoodies & Sweatshirts"],
       ["hoodie"],
       ["machine wash", "long sleeve", "drawstring closure", "polyester cotton", "fleece lined",
        "relaxed fit", "kangaroo pocket"],
       [("color", COLORS), ("size", APPAREL_SIZES)], (15, 60), ["for women", "for men"]),
    _t("jeans", "fashion", ["Men", "Clothing", "Jeans"], ["jeans"],
       ["machine wash", "button closure", "stretch denim", "slim fit", "high waist",
        "straight leg", "zipper closure"],
       [("color", ("light wash", "dark wash", "black", "medium wash", "grey", "indigo")),
        ("size", ("28w x 30l", "30w x 30l", "32w x 32l", "34w x 32l", "36w x 34l",
                  "38w x 34l"))], (20, 75), ["for men", "for women"]),
    _t("running shoes", "fashion", ["Women", "Shoes", "Athletic", "Running"],
       ["running", "shoes"],
       ["non slip", "rubber sole", "lightweight", "breathable mesh", "arch support",
        "memory foam", "lace up"],
       [("color", COLORS[:12]), ("size", SHOE_SIZES)], (25, 130), ["for women", "for men"]),
    _t("winter boots", "fashion", ["Women", "Shoes", "Boots"], ["winter", "boots"],
       ["waterproof", "faux fur", "rubber sole", "non slip", "warm lining", "slip on"],
       [("color", ("black", "brown", "grey", "chestnut", "navy blue", "tan")),
        ("size", SHOE_SIZES)], (30, 140), ["for women", "for men"]),
    _t("summer dress", "fashion", ["Women", "Clothing", "Dresses"], ["dress"],
       ["machine wash", "short sleeve", "v neck", "flowy", "floral print", "polyester spandex",
        "pockets"],
       [("color", COLORS), ("size", APPAREL_SIZES)], (15, 65), ["for women"]),
    _t("athletic socks", "fashion", ["Men", "Clothing", "Socks"], ["socks"],
       ["moisture wicking", "cushioned sole", "machine wash", "arch support", "breathable",
        "cotton blend"],
       [("color", ("white", "black", "grey", "multicolor", "navy blue")),
        ("size", PACKS[2:])], (8, 32), ["for men", "for women"]),
    _t("yoga leggings", "fashion", ["Women", "Clothing", "Active", "Leggings"],
       ["yoga", "leggings"],
       ["high waist", "tummy control", "squat proof", "four way stretch", "machine wash",
        "pockets", "moisture wicking"],
       [("color", COLORS), ("size", APPAREL_SIZES)], (12, 50), ["for women"]),
    _t("winter jacket", "fashion", ["Men", "Clothing", "Coats, Jackets & Vests"], ["jacket"],
       ["water resistant", "zipper closure", "hooded", "fleece lined", "windproof",
        "machine wash", "packable"],
       [("color", COLORS[:14]), ("size", APPAREL_SIZES)], (35, 160), ["for men", "for women"]),
    _t("leather wallet", "fashion", ["Men", "Accessories", "Wallets"], ["wallet"],
       ["genuine leather", "rfid blocking", "slim design", "gift box", "card holder"],
       [("color", ("black", "brown", "tan", "navy blue", "burgundy"))], (12, 60),
       ["for men"]),
    # ------------------------------------------------------------------ furniture
    _t("office chair", "furniture", ["Furniture", "Home Office Furniture", "Chairs"],
       ["office", "chair"],
       ["lumbar support", "height adjustable", "easy assemble", "pu leather", "heavy duty",
        "mesh back", "swivel wheels"],
       [("color", ("black", "grey", "white", "blue", "pink", "brown"))], (60, 320)),
    _t("coffee table", "furniture", ["Furniture", "Living Room Furniture", "Tables"],
       ["coffee", "table"],
       ["solid wood", "easy assemble", "storage space", "tempered glass", "metal frame",
        "living room", "lift top"],
       [("color", WOOD), ("size", ("36 inch", "42 inch", "47 inch", "55 inch"))], (45, 260)),
    _t("bookshelf", "furniture", ["Furniture", "Home Office Furniture", "Bookcases"],
       ["bookshelf"],
       ["easy assemble", "solid wood", "metal frame", "storage space", "space saving",
        "wall mounted"],
       [("color", WOOD), ("size", ("3 tier", "4 tier", "5 tier", "6 tier"))], (35, 210)),
    _t("bed frame", "furniture", ["Furniture", "Bedroom Furniture", "Beds, Frames & Bases"],
       ["bed", "frame"],
       ["heavy duty", "easy assemble", "noise free", "storage space", "metal frame",
        "solid wood", "no box spring needed"],
       [("color", ("black", "white", "grey", "walnut", "espresso")), ("size", BED_SIZES)],
       (80, 420)),
    _t("nightstand", "furniture", ["Furniture", "Bedroom Furniture", "Nightstands"],
       ["nightstand"],
       ["easy assemble", "storage space", "solid wood", "charging station", "drawer",
        "space saving"],
       [("color", WOOD), ("size", ("pack of 1", "pack of 2"))], (30, 160)),
    _t("bar stools", "furniture", ["Furniture", "Kitchen & Dining Room Furniture",
                                    "Bar Stools"], ["bar", "stools"],
       ["height adjustable", "pu leather", "swivel seat", "easy assemble", "footrest",
        "metal frame"],
       [("color", ("black", "grey", "white", "brown", "beige")),
        ("size", ("set of 2", "set of 3", "set of 4"))], (55, 280)),
    _t("tv stand", "furniture", ["Furniture", "Living Room Furniture",
                                  "TV & Media Furniture"], ["tv", "stand"],
       ["storage space", "easy assemble", "cable management", "solid wood", "led lights",
        "living room"],
       [("color", WOOD), ("size", ("55 inch", "65 inch", "70 inch", "75 inch"))], (60, 300)),
    _t("dining chairs", "furniture", ["Furniture", "Kitchen & Dining Room Furniture",
                                       "Chairs"], ["dining", "chairs"],
       ["solid wood", "upholstered seat", "easy assemble", "mid century", "heavy duty",
        "metal legs"],
       [("color", ("beige", "grey", "black", "green", "navy blue", "white")),
        ("size", ("set of 2", "set of 4", "set of 6"))], (70, 350)),
    _t("shoe rack", "furniture", ["Storage & Organization", "Clothing & Closet Storage",
                                   "Shoe Organizers"], ["shoe", "rack"],
       ["space saving", "easy assemble", "metal frame", "stackable", "heavy duty",
        "entryway"],
       [("color", ("black", "white", "bamboo", "grey", "brown")),
        ("size", ("3 tier", "4 tier", "5 tier", "8 tier"))], (15, 90)),
    # ------------------------------------------------------------------ electronics
    _t("wireless earbuds", "electronics", ["Headphones", "Earbud Headphones"],
       ["earbuds"],
       ["noise cancelling", "long battery life", "water resistant", "fast charging",
        "bluetooth 5.3", "hands free", "wireless charging"],
       [("color", ("black", "white", "navy blue", "pink", "green", "silver"))], (15, 180)),
    _t("usb c cable", "electronics", ["Accessories & Supplies", "Cables", "USB Cables"],
       ["cable"],
       ["fast charging", "braided nylon", "high speed", "data transfer", "durable",
        "usb 3.1"],
       [("size", CABLE_LEN[:5]), ("color", ("black", "white", "grey", "red", "blue"))],
       (5, 25)),
    _t("phone case", "electronics", ["Cell Phones & Accessories", "Cases, Holsters & Sleeves",
                                      "Basic Cases"], ["phone", "case"],
       ["shockproof", "wireless charging compatible", "slim fit", "scratch resistant",
        "raised edges", "clear back"],
       [("color", ("black", "clear", "navy blue", "purple", "pink", "green", "red")),
        ("size", PHONES)], (6, 35)),
    _t("portable charger", "electronics", ["Cell Phones & Accessories",
                                            "Chargers & Power Adapters", "Portable Power Banks"],
       ["charger"],
       ["fast charging", "usb c", "high capacity", "led display", "compact size",
        "wireless charging"],
       [("size", ("5000mah", "10000mah", "20000mah", "26800mah")),
        ("color", ("black", "white", "blue", "pink"))], (15, 80)),
    _t("bluetooth speaker", "electronics", ["Portable Audio & Video", "Portable Speakers"],
       ["bluetooth", "speaker"],
       ["waterproof", "long battery life", "stereo sound", "deep bass", "hands free",
        "portable design"],
       [("color", ("black", "blue", "red", "grey", "green", "camo"))], (20, 160)),
    _t("hdmi cable", "electronics", ["Accessories & Supplies", "Cables", "HDMI Cables"],
       ["hdmi", "cable"],
       ["high speed", "4k", "gold plated", "braided nylon", "ethernet", "8k"],
       [("size", CABLE_LEN), ("color", ("black", "grey"))], (6, 30)),
    _t("webcam", "electronics", ["Computers & Accessories", "Computer Accessories",
                                  "Webcams"], ["webcam"],
       ["1080p", "built in microphone", "auto focus", "plug and play", "privacy cover",
        "wide angle"],
       [("color", ("black", "white"))], (20, 120)),
    _t("wireless mouse", "electronics", ["Computers & Accessories", "Keyboards, Mice",
                                          "Mice"], ["mouse"],
       ["ergonomic design", "silent click", "rechargeable", "usb receiver", "long battery life",
        "adjustable dpi"],
       [("color", ("black", "white", "grey", "pink", "blue", "rose gold"))], (8, 60)),
    _t("smart watch band", "electronics", ["Wearable Technology", "Accessories", "Bands"],
       ["watch", "band"],
       ["quick release", "soft silicone", "stainless steel", "adjustable", "sweat resistant",
        "genuine leather"],
       [("color", COLORS[:12]), ("size", ("38mm", "40mm", "41mm", "42mm", "44mm", "45mm"))],
       (6, 35)),
    _t("led desk lamp", "electronics", ["Lighting", "Lamps", "Desk Lamps"], ["desk", "lamp"],
       ["dimmable", "eye caring", "usb charging port", "touch control", "adjustable arm",
        "energy efficient"],
       [("color", ("black", "white", "silver", "grey"))], (15, 75)),
)

CATEGORIES = tuple(DEPARTMENTS)

# Brand names are built from two syllable lists: many brands, all deterministic.
BRAND_HEADS = ("Aur", "Bel", "Cor", "Dav", "Eli", "Fen", "Gal", "Hal", "Ivo", "Jun", "Kel",
               "Lum", "Mar", "Nov", "Orv", "Pax", "Qui", "Ros", "Sol", "Tal", "Ulv", "Ven",
               "Wyl", "Xan", "Yor", "Zel")
BRAND_TAILS = ("ora", "ix", "ana", "eon", "ly", "ica", "era", "ova", "en", "ari", "um",
               "ette", "ano", "iva")

QUALITY_WORDS = ("Premium", "Classic", "Essential", "Deluxe", "Everyday", "Pro", "Ultra",
                 "Original", "Signature", "Modern")
REVIEW_TITLES = {
    5: ("Love it", "Exactly as described", "Great value", "Would buy again", "Perfect"),
    4: ("Very good", "Works well", "Nice quality", "Happy with it"),
    3: ("It's okay", "Decent for the price", "Average"),
    2: ("Not great", "Disappointed", "Could be better"),
    1: ("Did not work for me", "Poor quality", "Returned it"),
}
REVIEW_BODIES = {
    5: ("This {type} is exactly what I wanted. {attr} as promised.",
        "Second time ordering this {type}. Really {attr}."),
    4: ("Good {type} overall. The {option} option looks nice.",
        "Solid {type}; {attr} like the listing says."),
    3: ("The {type} is fine, nothing special.", "Does the job, though not very {attr}."),
    2: ("The {type} arrived late and feels cheap.", "Expected it to be more {attr}."),
    1: ("The {type} broke after a week.", "Not {attr} at all."),
}
