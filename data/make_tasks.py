"""Make izkit's own task files in the Instruction Induction format (Honovich et al., 2022).

Run ``python data/make_tasks.py`` (optionally ``--out DIR --seed N``) to write ``DIR/induce/<task>.json`` and
``DIR/execute/<task>.json`` for every task below. The output is deterministic: each task draws from its own
``random.Random`` seeded with a string (string seeds hash with SHA-512, not with Python's per-process hash), every
collection is iterated in a fixed order, and files are written with ``json.dump(..., indent=1, ensure_ascii=False)``
plus a trailing newline, so a second run reproduces the files byte for byte.

Every fact list in this file (antonyms, plurals, synonyms, translations, animal sizes, concepts, rhymes, causes and
effects, sentence parts) was written by hand for this project. Examples are either one fact each (a word and its
plural) or composed from those facts (two animals of clearly different size classes; a sentence built from a subject
and a predicate). The two splits never share an input, and neither split repeats one. See data/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path

SEED = 0  # the seed the committed files were made with
OUT = Path(__file__).resolve().parent  # data/


def lines(block: str, sep: str | None = None) -> list[list[str]]:
    """A hand-written block -> one list of stripped fields per non-empty line (fields split on ``sep``)."""
    rows = []
    for line in block.strip().splitlines():
        line = line.strip()
        if line:
            rows.append([f.strip() for f in line.split(sep)])
    return rows


def unique(values: Iterable[str], what: str) -> list[str]:
    """The values in order; fails if one repeats (hand-written lists must not hold duplicates)."""
    values = list(values)
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what}: {v!r} is listed twice")
        seen.add(v)
    return values


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


# ---------------------------------------------------------------------------------------------------------------------
# Word lists shared by the letter tasks (first_word_letter, second_word_letter, letters_list)

VOCABULARY = unique(
    """
    cat dog horse cow pig sheep goat lion tiger bear wolf fox deer mouse rabbit duck goose owl eagle frog snake whale
    shark camel zebra monkey donkey turtle parrot spider
    apple banana cherry grape lemon orange peach pear plum bread butter cheese cake cookie soup rice pasta pizza salad
    sugar honey milk coffee tea juice water egg carrot potato onion tomato
    chair table sofa bed lamp clock mirror window door carpet pillow blanket towel spoon fork knife plate bowl cup
    kettle oven stove bottle basket bucket candle curtain shelf drawer
    river lake ocean island forest desert valley hill mountain cloud rain snow storm thunder wind sun moon star planet
    flower grass leaf tree rock stone sand beach wave field garden
    mother father sister brother uncle aunt cousin baby child friend teacher doctor nurse farmer baker pilot sailor
    soldier artist singer dancer driver writer judge king queen prince princess student neighbor
    school church castle bridge tower street road market office library museum hospital station airport harbor
    village city town house park palace temple prison factory bank hotel theater stadium farm
    car bus train truck plane boat ship bicycle rocket wagon ticket wallet pencil paper letter book glove jacket shirt
    skirt sock shoe boot hat scarf ring necklace umbrella ladder hammer
    happy sad angry brave calm clever quiet loud bright dark heavy light small large tiny huge quick slow warm cold
    fresh sweet sour bitter rich poor young old early late
    run walk jump swim climb dance sing laugh write read think speak listen watch cook bake paint build carry throw
    catch push pull open close sleep dream travel visit wander
    music story idea answer question number color shape voice memory silence courage wisdom freedom justice beauty
    journey adventure secret promise reason moment season winter summer autumn spring
    """.split(),
    "VOCABULARY",
)


def letter_task(fn: Callable[[str], str]) -> Callable[[random.Random], list[dict]]:
    def make(rng: random.Random) -> list[dict]:
        return [{"input": w, "output": fn(w)} for w in VOCABULARY]

    return make


# ---------------------------------------------------------------------------------------------------------------------
# antonyms: one word -> its usual opposite. Every word appears in one pair only, so no pair shows up reversed.

ANTONYMS = lines(
    """
    hot cold
    big small
    tall short
    fast slow
    happy sad
    light dark
    open closed
    rich poor
    young old
    early late
    strong weak
    soft hard
    wet dry
    full empty
    clean dirty
    thick thin
    deep shallow
    wide narrow
    loud quiet
    cheap expensive
    true false
    correct incorrect
    first last
    high low
    near far
    inside outside
    up down
    push pull
    buy sell
    win lose
    give take
    love hate
    always never
    before after
    above below
    begin end
    accept reject
    increase decrease
    maximum minimum
    major minor
    include exclude
    import export
    internal external
    inhale exhale
    ancient modern
    asleep awake
    alive dead
    beautiful ugly
    brave cowardly
    careful careless
    cruel kind
    friend enemy
    day night
    north south
    east west
    summer winter
    sunrise sunset
    question answer
    victory defeat
    success failure
    top bottom
    front back
    entrance exit
    arrival departure
    husband wife
    king queen
    boy girl
    man woman
    brother sister
    uncle aunt
    father mother
    son daughter
    male female
    positive negative
    possible impossible
    patient impatient
    polite rude
    legal illegal
    visible invisible
    honest dishonest
    agree disagree
    appear disappear
    like dislike
    known unknown
    usual unusual
    fair unfair
    lucky unlucky
    safe dangerous
    smooth rough
    guilty innocent
    optimistic pessimistic
    ascend descend
    remember forget
    laugh cry
    sink float
    attack defend
    borrow lend
    teach learn
    send receive
    come go
    forward backward
    upstairs downstairs
    inner outer
    upper lower
    future past
    present absent
    more less
    many few
    most least
    all none
    everything nothing
    everybody nobody
    plus minus
    add subtract
    multiply divide
    odd even
    vertical horizontal
    natural artificial
    public private
    simple complex
    easy difficult
    same different
    mature immature
    responsible irresponsible
    regular irregular
    relevant irrelevant
    logical illogical
    active passive
    rural urban
    temporary permanent
    wild tame
    raw cooked
    heaven hell
    war peace
    joy sorrow
    hope despair
    profit loss
    credit debit
    employer employee
    teacher student
    parent child
    lead follow
    obey disobey
    connect disconnect
    lock unlock
    pack unpack
    tie untie
    fold unfold
    dress undress
    cover uncover
    load unload
    employed unemployed
    comfortable uncomfortable
    healthy unhealthy
    friendly unfriendly
    certain uncertain
    necessary unnecessary
    pleasant unpleasant
    able unable
    willing unwilling
    wise foolish
    sober drunk
    interior exterior
    superior inferior
    input output
    dawn dusk
    floor ceiling
    loose tight
    buyer seller
    winner loser
    host guest
    hero villain
    landlord tenant
    majority minority
    lengthen shorten
    strengthen weaken
    """
)


def make_antonyms(rng: random.Random) -> list[dict]:
    unique((w for pair in ANTONYMS for w in pair), "antonyms (each word once)")
    return [{"input": a, "output": b} for a, b in ANTONYMS]


# ---------------------------------------------------------------------------------------------------------------------
# synonyms: one word -> one synonym (scored by "contains"). No answer is also an input, so no pair shows up reversed.

SYNONYMS = lines(
    """
    happy glad
    sad unhappy
    angry mad
    quick fast
    begin start
    end finish
    smart clever
    rich wealthy
    small little
    big large
    tired sleepy
    scared afraid
    shout yell
    house home
    car automobile
    child kid
    gift present
    stone rock
    road street
    shop store
    sick ill
    rude impolite
    wrong incorrect
    right correct
    easy simple
    hard difficult
    near close
    quiet silent
    loud noisy
    pretty beautiful
    funny amusing
    famous renowned
    brave courageous
    strong powerful
    weak feeble
    cold chilly
    wet damp
    empty vacant
    fix repair
    build construct
    buy purchase
    choose select
    help assist
    try attempt
    want desire
    need require
    keep retain
    get obtain
    give provide
    show display
    hide conceal
    tell inform
    speak talk
    say state
    ask inquire
    answer reply
    jump leap
    sleep slumber
    eat consume
    cry weep
    smile grin
    understand comprehend
    remember recall
    allow permit
    stop halt
    disappear vanish
    destroy ruin
    hurt injure
    throw toss
    pull tug
    push shove
    gather collect
    join connect
    split divide
    mix blend
    rise ascend
    fall drop
    hurry rush
    mistake error
    idea notion
    job occupation
    goal aim
    chance opportunity
    problem issue
    reason cause
    result outcome
    fight battle
    trip journey
    story tale
    picture image
    noise sound
    smell odor
    friend companion
    enemy foe
    doctor physician
    lawyer attorney
    sailor mariner
    baby infant
    woman lady
    father dad
    mother mom
    couch sofa
    trash garbage
    pants trousers
    cap hat
    bucket pail
    center middle
    edge border
    sea ocean
    woods forest
    dirt soil
    fire flame
    speed velocity
    strength power
    fear dread
    anger rage
    joy delight
    sadness sorrow
    love affection
    hate detest
    like enjoy
    rest relax
    stay remain
    cautious careful
    honest truthful
    sure certain
    odd strange
    weird bizarre
    common ordinary
    rare scarce
    huge enormous
    thin slim
    wide broad
    neat tidy
    messy untidy
    dirty filthy
    shiny glossy
    dark dim
    calm peaceful
    lazy idle
    polite courteous
    mean cruel
    terrible horrible
    false untrue
    fake counterfeit
    real genuine
    main primary
    whole entire
    part portion
    total sum
    alike similar
    rapid swift
    slow sluggish
    late tardy
    often frequently
    maybe perhaps
    almost nearly
    quickly rapidly
    suddenly abruptly
    sometimes occasionally
    below beneath
    enough sufficient
    cash money
    wealth riches
    price cost
    amount quantity
    photo photograph
    movie film
    bike bicycle
    plane airplane
    fridge refrigerator
    phone telephone
    exam test
    shut close
    grab seize
    own possess
    use utilize
    foolish silly
    stupid dumb
    dull boring
    exciting thrilling
    scary frightening
    dangerous risky
    safe secure
    tasty delicious
    evil wicked
    holy sacred
    modern contemporary
    final last
    vast immense
    keen eager
    annual yearly
    """
)


def make_synonyms(rng: random.Random) -> list[dict]:
    inputs = set(unique((a for a, _ in SYNONYMS), "synonyms (inputs)"))
    for a, b in SYNONYMS:
        if b in inputs:
            raise ValueError(f"synonyms: the answer {b!r} of {a!r} is also an input")
    return [{"input": a, "output": b} for a, b in SYNONYMS]


# ---------------------------------------------------------------------------------------------------------------------
# singular_to_plural: regular (-s, -es, -ies, -ves), irregular, unchanged and Latin/Greek plurals

PLURALS = lines(
    """
    cat cats
    dog dogs
    book books
    car cars
    tree trees
    house houses
    apple apples
    bird birds
    chair chairs
    table tables
    door doors
    window windows
    pen pens
    girl girls
    boy boys
    day days
    key keys
    toy toys
    monkey monkeys
    cup cups
    hat hats
    ring rings
    song songs
    river rivers
    mountain mountains
    lake lakes
    road roads
    ship ships
    train trains
    plane planes
    horse horses
    cow cows
    pig pigs
    duck ducks
    frog frogs
    snake snakes
    lion lions
    tiger tigers
    bear bears
    rabbit rabbits
    flower flowers
    garden gardens
    idea ideas
    friend friends
    teacher teachers
    doctor doctors
    student students
    farmer farmers
    shoe shoes
    sock socks
    shirt shirts
    coat coats
    bag bags
    bottle bottles
    plate plates
    spoon spoons
    lamp lamps
    clock clocks
    phone phones
    computer computers
    camera cameras
    picture pictures
    letter letters
    word words
    name names
    street streets
    village villages
    school schools
    office offices
    market markets
    cloud clouds
    star stars
    planet planets
    island islands
    forest forests
    desert deserts
    ocean oceans
    egg eggs
    cake cakes
    banana bananas
    orange oranges
    carrot carrots
    onion onions
    cookie cookies
    bed beds
    pillow pillows
    blanket blankets
    towel towels
    mirror mirrors
    candle candles
    balloon balloons
    kite kites
    drum drums
    guitar guitars
    piano pianos
    radio radios
    zoo zoos
    photo photos
    video videos
    kangaroo kangaroos
    roof roofs
    chief chiefs
    cliff cliffs
    belief beliefs
    chef chefs
    box boxes
    fox foxes
    bus buses
    glass glasses
    class classes
    dish dishes
    brush brushes
    church churches
    watch watches
    bench benches
    lunch lunches
    beach beaches
    match matches
    peach peaches
    dress dresses
    kiss kisses
    wish wishes
    tax taxes
    bush bushes
    witch witches
    sandwich sandwiches
    potato potatoes
    tomato tomatoes
    hero heroes
    echo echoes
    torpedo torpedoes
    veto vetoes
    city cities
    baby babies
    party parties
    story stories
    lady ladies
    country countries
    family families
    cherry cherries
    berry berries
    puppy puppies
    penny pennies
    body bodies
    library libraries
    factory factories
    army armies
    enemy enemies
    diary diaries
    hobby hobbies
    spy spies
    sky skies
    copy copies
    leaf leaves
    knife knives
    wife wives
    life lives
    wolf wolves
    half halves
    shelf shelves
    loaf loaves
    thief thieves
    calf calves
    elf elves
    man men
    woman women
    child children
    tooth teeth
    foot feet
    goose geese
    mouse mice
    louse lice
    ox oxen
    person people
    sheep sheep
    deer deer
    moose moose
    series series
    species species
    aircraft aircraft
    crisis crises
    analysis analyses
    thesis theses
    diagnosis diagnoses
    hypothesis hypotheses
    oasis oases
    axis axes
    phenomenon phenomena
    criterion criteria
    bacterium bacteria
    nucleus nuclei
    stimulus stimuli
    fungus fungi
    larva larvae
    vertebra vertebrae
    """
)


def make_plurals(rng: random.Random) -> list[dict]:
    unique((s for s, _ in PLURALS), "singular_to_plural")
    return [{"input": s, "output": p} for s, p in PLURALS]


# ---------------------------------------------------------------------------------------------------------------------
# larger_animal: size classes by typical adult mass; a pair is only asked when the classes are two or more apart, so
# the answer holds for any breed or species the name could mean.

ANIMAL_SIZE_CLASSES = [
    "ant flea mosquito bee ladybug termite gnat wasp",  # 0: under a gram
    "mouse hamster sparrow hummingbird frog goldfish snail gerbil canary shrew",  # 1: about 1 to 150 g
    "rabbit squirrel cat chicken duck owl skunk raccoon ferret hedgehog pigeon fox turkey",  # 2: about 0.3 to 10 kg
    "wolf sheep goat beaver coyote kangaroo cheetah leopard hyena",  # 3: about 10 to 100 kg
    "lion tiger bear horse cow gorilla zebra camel moose pig panda ostrich bison",  # 4: about 100 to 1000 kg
    "elephant rhinoceros hippopotamus giraffe whale walrus",  # 5: about a tonne and more
]


def make_larger_animal(rng: random.Random) -> list[dict]:
    size = {a: c for c, names in enumerate(ANIMAL_SIZE_CLASSES) for a in unique(names.split(), "animals")}
    animals = sorted(size)
    pairs = [(a, b) for i, a in enumerate(animals) for b in animals[i + 1 :] if abs(size[a] - size[b]) >= 2]
    out = []
    for a, b in rng.sample(pairs, 300):
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        out.append({"input": f"{first}, {second}", "output": a if size[a] > size[b] else b})
    return out


# ---------------------------------------------------------------------------------------------------------------------
# sum, diff, num_to_verbal: seeded numbers

def make_sum(rng: random.Random) -> list[dict]:
    pairs = rng.sample([(a, b) for a in range(1, 100) for b in range(1, 100)], 300)
    return [{"input": f"{a} {b}", "output": str(a + b)} for a, b in pairs]


def make_diff(rng: random.Random) -> list[dict]:
    pairs = rng.sample([(a, b) for a in range(2, 100) for b in range(1, a)], 300)
    return [{"input": f"{a} {b}", "output": str(a - b)} for a, b in pairs]


ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def verbal(n: int) -> str:
    """0 <= n < 10000 in words, e.g. 2345 -> 'two thousand three hundred forty-five'."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + (f"-{ONES[n % 10]}" if n % 10 else "")
    if n < 1000:
        return f"{ONES[n // 100]} hundred" + (f" {verbal(n % 100)}" if n % 100 else "")
    return f"{ONES[n // 1000]} thousand" + (f" {verbal(n % 1000)}" if n % 1000 else "")


def make_num_to_verbal(rng: random.Random) -> list[dict]:
    numbers = rng.sample(range(1, 100), 60) + rng.sample(range(100, 1000), 90) + rng.sample(range(1000, 10000), 150)
    rng.shuffle(numbers)
    return [{"input": str(n), "output": verbal(n)} for n in numbers]


# ---------------------------------------------------------------------------------------------------------------------
# negation: a subject and a predicate make a sentence; the answer puts "not" (or "does not"/"do not") in it

NEG_SUBJECTS_SINGULAR = [
    "My sister", "Our teacher", "The old farmer", "Anna", "David", "The new doctor", "His uncle", "The little boy",
    "My neighbor", "The baker", "Her cousin", "The pilot", "Maria", "The young artist",
]
NEG_SUBJECTS_PLURAL = ["My parents", "The children", "Our neighbors", "The students", "Her grandparents", "The twins"]

NEG_VERBS = lines(  # third person singular | base form (+ the rest of the predicate)
    """
    plays the piano | play the piano
    speaks French | speak French
    drinks coffee in the morning | drink coffee in the morning
    likes cheese | like cheese
    reads the newspaper every day | read the newspaper every day
    lives in a big city | live in a big city
    works at the bank | work at the bank
    owns a red car | own a red car
    walks to school | walk to school
    watches television at night | watch television at night
    eats meat | eat meat
    wears glasses | wear glasses
    sings in the choir | sing in the choir
    drives a truck | drive a truck
    cooks dinner on Sundays | cook dinner on Sundays
    knows the answer | know the answer
    writes poems | write poems
    rides a bike to work | ride a bike to work
    grows tomatoes in the garden | grow tomatoes in the garden
    goes swimming on weekends | go swimming on weekends
    has a dog | have a dog
    wants a new phone | want a new phone
    keeps a diary | keep a diary
    visits the museum often | visit the museum often
    """,
    "|",
)
NEG_ADJECTIVES = [  # what follows "is"/"are"
    "tall", "tired", "hungry", "busy", "angry", "happy", "at home", "afraid of dogs", "good at chess",
    "ready for the trip", "late for the meeting", "interested in sports",
]


def make_negation(rng: random.Random) -> list[dict]:
    pairs = []
    for subj in NEG_SUBJECTS_SINGULAR + NEG_SUBJECTS_PLURAL:
        plural = subj in NEG_SUBJECTS_PLURAL
        for third, base in NEG_VERBS:
            affirm = f"{subj} {base if plural else third}."
            pairs.append((affirm, f"{subj} {'do' if plural else 'does'} not {base}."))
        for adj in NEG_ADJECTIVES:
            be = "are" if plural else "is"
            pairs.append((f"{subj} {be} {adj}.", f"{subj} {be} not {adj}."))
    return [{"input": a, "output": n} for a, n in rng.sample(pairs, 300)]


# ---------------------------------------------------------------------------------------------------------------------
# active_to_passive: agent + verb + a fitting object; the answer is the passive with "by"

PASSIVE_AGENTS = [
    "the boy", "the girl", "my father", "my mother", "the teacher", "the students", "the children", "our neighbor",
    "the old man", "the farmer", "the artist", "the workers", "my sister", "the chef", "the mechanic",
]
PASSIVE_VERBS = lines(  # past | participle | objects (a trailing * marks a plural object)
    """
    wrote | written | the letter, the poem, the report, the song, the story, the email
    painted | painted | the fence, the house, the portrait, the wall, the door, the picture
    cooked | cooked | the dinner, the rice, the soup, the pasta, the meal
    baked | baked | the bread, the cake, the cookies*, the pie
    cleaned | cleaned | the kitchen, the windows*, the floor, the car, the room
    fixed | fixed | the bike, the roof, the sink, the computer, the lamp
    built | built | the house, the bridge, the wall, the shed, the sandcastle, the fence
    broke | broken | the window, the vase, the glass, the plate, the chair
    ate | eaten | the apple, the sandwich, the cake, the cookies*, the pizza
    drove | driven | the car, the truck, the bus, the tractor
    opened | opened | the door, the window, the box, the gift, the letter
    caught | caught | the ball, the fish, the thief, the rabbit
    found | found | the keys*, the wallet, the treasure, the map, the lost dog
    washed | washed | the dishes*, the car, the dog, the clothes*, the windows*
    sang | sung | the song, the anthem, the lullaby
    drew | drawn | the map, the picture, the circle, the cartoon
    delivered | delivered | the package, the letters*, the pizza, the mail, the newspaper
    stole | stolen | the money, the jewels*, the painting, the bike
    threw | thrown | the ball, the stone, the frisbee
    bought | bought | the tickets*, the bread, the house, the flowers*
    planted | planted | the trees*, the seeds*, the roses*
    read | read | the book, the newspaper, the letter
    watched | watched | the movie, the game, the birds*
    carried | carried | the bags*, the box, the baby
    visited | visited | the museum, the castle, the zoo
    fed | fed | the cat, the chickens*, the baby
    """,
    "|",
)


def make_active_to_passive(rng: random.Random) -> list[dict]:
    pairs = []
    for past, participle, objects in PASSIVE_VERBS:
        for obj in unique((o.strip() for o in objects.split(",")), f"objects of {past}"):
            plural = obj.endswith("*")
            obj = obj.rstrip("*")
            for agent in PASSIVE_AGENTS:
                active = cap(f"{agent} {past} {obj}.")
                passive = cap(f"{obj} {'were' if plural else 'was'} {participle} by {agent}.")
                pairs.append((active, passive))
    return [{"input": a, "output": p} for a, p in rng.sample(pairs, 300)]


# ---------------------------------------------------------------------------------------------------------------------
# taxonomy_animal: six words, two to four of them animals; the answer lists the animals in the order given

TAXONOMY_ANIMALS = unique(
    """
    cat dog horse cow pig sheep goat lion tiger elephant giraffe zebra monkey rabbit squirrel wolf fox deer camel
    kangaroo koala panda frog snake lizard turtle crocodile shark whale dolphin octopus eagle owl parrot penguin pigeon
    sparrow chicken duck goose ant bee butterfly spider hamster donkey leopard cheetah hedgehog otter beaver moose
    gorilla rhinoceros salmon trout lobster crab snail worm ostrich flamingo swan raccoon skunk
    """.split(),
    "TAXONOMY_ANIMALS",
)
TAXONOMY_OTHERS = unique(
    """
    chair table pencil guitar bicycle helicopter hammer cloud mountain river apple banana carrot potato bread cheese
    shoe shirt umbrella window bottle candle clock telephone computer book newspaper piano violin rose tulip oak cactus
    stone diamond car truck train boat rocket sofa lamp mirror spoon fork knife plate cup pillow blanket ladder wallet
    coin key bucket envelope scissors
    """.split(),
    "TAXONOMY_OTHERS",
)


def make_taxonomy_animal(rng: random.Random) -> list[dict]:
    seen: set[str] = set()
    out = []
    while len(out) < 300:
        n_animals = rng.randint(2, 4)
        words = rng.sample(TAXONOMY_ANIMALS, n_animals) + rng.sample(TAXONOMY_OTHERS, 6 - n_animals)
        rng.shuffle(words)
        text = ", ".join(words)
        if text in seen:
            continue
        seen.add(text)
        out.append({"input": text, "output": ", ".join(w for w in words if w in TAXONOMY_ANIMALS)})
    return out


# ---------------------------------------------------------------------------------------------------------------------
# orthography_starts_with: a sentence and a letter "[x]"; the answer lists the sentence's words starting with it

ORTHO_ADJECTIVES = (
    "big small old young happy quiet brave clever lazy hungry tired curious angry friendly noisy gentle "
    "proud shy busy sleepy"
).split()
ORTHO_SUBJECTS = (
    "cat dog boy girl farmer teacher baker pilot sailor monkey rabbit horse student doctor painter king "
    "queen child nurse fox"
).split()
ORTHO_VERBS = (
    "found carried pushed painted watched followed dropped chased lifted washed opened kicked pulled hid "
    "moved touched"
).split()
ORTHO_OBJECT_ADJECTIVES = "red blue green heavy tiny shiny wooden broken dusty golden round soft".split()
ORTHO_OBJECTS = "ball box basket chair book lamp ladder bucket kite hat bottle drum sack wagon bell key".split()
ORTHO_PREPOSITIONS = "near behind beside past".split()
ORTHO_PLACES = "bridge garden river market barn school castle fence station library church harbor".split()
ORTHO_NAMES = "Anna Ben Carla David Emma Frank Grace Henry Irene Jack Laura Mike Nora Oscar Paula Sam".split()
ORTHO_TIMES = ["yesterday", "today", "last night", "this morning", "on Monday", "after lunch"]


def ortho_sentence(rng: random.Random) -> str:
    verb, oadj, obj = rng.choice(ORTHO_VERBS), rng.choice(ORTHO_OBJECT_ADJECTIVES), rng.choice(ORTHO_OBJECTS)
    prep, place = rng.choice(ORTHO_PREPOSITIONS), rng.choice(ORTHO_PLACES)
    if rng.random() < 0.5:
        subject = f"The {rng.choice(ORTHO_ADJECTIVES)} {rng.choice(ORTHO_SUBJECTS)}"
        return f"{subject} {verb} the {oadj} {obj} {prep} the {place}."
    article = "an" if oadj[0] in "aeiou" else "a"
    return f"{rng.choice(ORTHO_NAMES)} {verb} {article} {oadj} {obj} {prep} the {place} {rng.choice(ORTHO_TIMES)}."


def make_orthography_starts_with(rng: random.Random) -> list[dict]:
    seen: set[str] = set()
    out = []
    while len(out) < 300:
        sentence = ortho_sentence(rng)
        if sentence in seen:
            continue
        seen.add(sentence)
        words = sentence.rstrip(".").split()
        hits: dict[str, dict[str, str]] = {}  # letter -> {lower-cased word: the word as written}, in sentence order
        for w in words:
            hits.setdefault(w[0].lower(), {}).setdefault(w.lower(), w)
        letters = sorted(x for x, ws in hits.items() if set(ws) - {"the", "a", "an"})  # never an article alone
        letter = rng.choices(letters, weights=[len(hits[x]) for x in letters])[0]  # letters with more words more often
        out.append({"input": f"{sentence} [{letter}]", "output": ", ".join(hits[letter].values())})
    return out


# ---------------------------------------------------------------------------------------------------------------------
# common_concept: a few items drawn from one concept; the answers are every concept that holds all of them

CONCEPTS = lines(
    """
    are fruits | apples, bananas, cherries, grapes, oranges, pears, peaches, plums, mangoes, lemons, strawberries, limes, grapefruits, cranberries
    are vegetables | carrots, potatoes, onions, cabbages, peas, turnips, radishes, leeks, cucumbers
    are red | strawberries, cherries, rubies, fire engines, tomatoes, ladybugs, stop signs, blood
    are yellow | bananas, lemons, canaries, sunflowers, egg yolks, daffodils, school buses
    are green | grass, limes, emeralds, cucumbers, peas, leaves, pickles, shamrocks
    can fly | eagles, airplanes, bees, helicopters, kites, bats, butterflies, hot-air balloons, drones, sparrows
    have wings | airplanes, bees, butterflies, bats, eagles, sparrows, chickens, penguins, angels, dragons
    live in the sea | whales, dolphins, sharks, octopuses, jellyfish, starfish, lobsters, seahorses
    are musical instruments | guitars, pianos, violins, drums, flutes, trumpets, harps, cellos, clarinets, banjos, accordions
    have strings | guitars, violins, harps, cellos, banjos, tennis rackets, kites, puppets, yo-yos
    have wheels | cars, bicycles, trains, skateboards, wheelchairs, wagons, shopping carts, buses, tractors, scooters
    have keys | pianos, typewriters, keyboards, maps, calculators, accordions
    can be made of glass | windows, mirrors, bottles, marbles, vases, lenses, jars, beads
    are hot | volcanoes, ovens, stoves, deserts, lava, flames, saunas, furnaces
    are cold | glaciers, freezers, icebergs, snowmen, ice cubes, refrigerators, igloos, popsicles
    are round | balls, wheels, coins, oranges, globes, plates, rings, bubbles, buttons, pizzas
    have teeth | combs, saws, zippers, sharks, gears, crocodiles, rakes, lions
    have shells | turtles, snails, eggs, crabs, clams, oysters, lobsters, coconuts, peanuts
    are used for writing | pens, pencils, crayons, markers, quills, typewriters, keyboards
    are found in a kitchen | ovens, stoves, refrigerators, sinks, spatulas, frying pans, kettles, toasters, cutting boards
    are tools | hammers, saws, screwdrivers, wrenches, drills, pliers, chisels, shovels, rakes
    are played with a ball | soccer, tennis, basketball, golf, baseball, volleyball, rugby, bowling, handball
    are planets | Mars, Venus, Jupiter, Saturn, Mercury, Neptune, Earth, Uranus
    are colors | red, blue, green, yellow, purple, pink, brown, gray, white, black
    are metals | iron, copper, gold, silver, tin, zinc, aluminum, nickel, platinum
    are gemstones | rubies, emeralds, diamonds, sapphires, opals, amethysts, topazes
    are found at the beach | sandcastles, seashells, surfboards, lifeguards, waves, sunscreen, beach towels, crabs
    are found in a hospital | doctors, nurses, stretchers, wheelchairs, patients, bandages, syringes, ambulances
    are found in a classroom | desks, chalkboards, teachers, students, textbooks, backpacks, rulers, erasers
    are insects | ants, bees, beetles, butterflies, mosquitoes, grasshoppers, ladybugs, termites, wasps, moths
    are reptiles | snakes, lizards, turtles, crocodiles, alligators, iguanas, geckos, tortoises
    are mammals | dogs, whales, bats, elephants, horses, dolphins, mice, kangaroos, cows, humans
    are birds | eagles, sparrows, penguins, ostriches, owls, parrots, chickens, swans, pigeons, flamingos
    are used to measure time | clocks, watches, sundials, hourglasses, stopwatches, timers
    are used to measure things | rulers, thermometers, scales, tape measures, speedometers, barometers, measuring cups
    give off light | lamps, candles, flashlights, lightbulbs, fireflies, stars, lighthouses, lanterns
    have needles | pine trees, fir trees, cacti, syringes, compasses, sewing machines, record players
    have roots | trees, plants, teeth, hairs, words, weeds, flowers
    can be made of wood | tables, chairs, canoes, baseball bats, violins, fences, doors, barrels, chopsticks
    are sweet | honey, sugar, chocolate, syrup, jam, cookies, cakes, candies, donuts
    are sour | lemons, limes, vinegar, pickles, grapefruits, sauerkraut, cranberries
    involve water | swimming, rowing, surfing, diving, fishing, sailing, kayaking, water polo
    involve snow | skiing, snowboarding, sledding, snowshoeing, snowball fights, building snowmen
    are card games | poker, solitaire, blackjack, rummy, canasta, cribbage, baccarat
    are used for cutting | knives, scissors, saws, axes, razors, lawnmowers, scalpels, swords
    are containers | boxes, jars, bottles, buckets, baskets, bags, barrels, crates, vases, cups
    are furniture | tables, chairs, sofas, beds, desks, wardrobes, bookshelves, dressers, stools
    """,
    "|",
)
EXAMPLES_PER_CONCEPT = 5


def make_common_concept(rng: random.Random) -> list[dict]:
    members = {c: unique((m.strip() for m in items.split(",")), c) for c, items in CONCEPTS}
    unique((c for c, _ in CONCEPTS), "concepts")
    seen: set[tuple[str, ...]] = set()
    out = []
    for concept, _ in CONCEPTS:
        made = 0
        while made < EXAMPLES_PER_CONCEPT:
            items = rng.sample(members[concept], rng.choice([3, 4]))
            key = tuple(sorted(items))
            if key in seen:
                continue
            seen.add(key)
            made += 1
            others = [c for c, _ in CONCEPTS if c != concept and set(items) <= set(members[c])]
            out.append({"items": items, "all_common_concepts": [concept] + others})
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# translation_en-fr: an English word -> its French translations (any one counts)

EN_FR = lines(
    """
    cat | chat
    dog | chien
    house | maison
    car | voiture
    book | livre
    water | eau
    bread | pain
    cheese | fromage
    apple | pomme
    tree | arbre
    flower | fleur
    sun | soleil
    moon | lune
    star | étoile
    sky | ciel
    sea | mer
    river | rivière, fleuve
    mountain | montagne
    city | ville
    street | rue
    door | porte
    window | fenêtre
    table | table
    chair | chaise
    bed | lit
    school | école
    teacher | professeur, enseignant, enseignante, maître, maîtresse
    friend | ami, amie
    mother | mère
    father | père
    brother | frère
    sister | sœur, soeur
    child | enfant
    man | homme
    woman | femme
    boy | garçon
    girl | fille
    king | roi
    queen | reine
    horse | cheval
    cow | vache
    bird | oiseau
    fish | poisson
    mouse | souris
    rabbit | lapin
    wolf | loup
    bear | ours
    pig | cochon, porc
    sheep | mouton
    chicken | poulet, poule
    egg | œuf, oeuf
    milk | lait
    wine | vin
    beer | bière
    coffee | café
    tea | thé
    sugar | sucre
    salt | sel
    meat | viande
    butter | beurre
    rice | riz
    soup | soupe
    cake | gâteau
    hand | main
    foot | pied
    head | tête
    eye | œil, oeil
    ear | oreille
    mouth | bouche
    nose | nez
    heart | cœur, coeur
    arm | bras
    leg | jambe
    hair | cheveux, cheveu
    tooth | dent
    day | jour, journée
    night | nuit
    week | semaine
    month | mois
    year | an, année
    morning | matin, matinée
    evening | soir, soirée
    hour | heure
    today | aujourd'hui
    tomorrow | demain
    yesterday | hier
    red | rouge
    blue | bleu, bleue
    green | vert, verte
    white | blanc, blanche
    black | noir, noire
    yellow | jaune
    big | grand, grande, gros, grosse
    small | petit, petite
    good | bon, bonne
    bad | mauvais, mauvaise
    old | vieux, vieille, ancien, ancienne
    hot | chaud, chaude
    cold | froid, froide
    beautiful | beau, belle
    happy | heureux, heureuse, content, contente
    sad | triste
    slow | lent, lente
    easy | facile
    difficult | difficile
    rich | riche
    poor | pauvre
    young | jeune
    strong | fort, forte
    tired | fatigué, fatiguée
    empty | vide
    full | plein, pleine
    dirty | sale
    true | vrai, vraie
    eat | manger
    drink | boire
    sleep | dormir
    run | courir
    walk | marcher
    speak | parler
    read | lire
    write | écrire
    sing | chanter
    dance | danser, danse
    swim | nager
    see | voir
    hear | entendre
    think | penser
    love | amour, aimer
    want | vouloir
    give | donner
    take | prendre
    buy | acheter
    sell | vendre
    find | trouver
    lose | perdre
    win | gagner
    play | jouer
    work | travail, travailler
    help | aide, aider
    wait | attendre
    come | venir
    go | aller
    die | mourir
    forget | oublier
    learn | apprendre
    understand | comprendre
    begin | commencer
    finish | finir, terminer
    answer | réponse, répondre
    question | question
    word | mot
    money | argent
    price | prix
    shop | magasin, boutique
    market | marché
    bank | banque
    church | église
    hospital | hôpital
    airport | aéroport
    train | train
    plane | avion
    boat | bateau
    bicycle | vélo, bicyclette
    road | route
    bridge | pont
    garden | jardin
    forest | forêt
    field | champ
    island | île
    beach | plage
    rain | pluie
    snow | neige
    wind | vent
    cloud | nuage
    fire | feu
    world | monde
    country | pays
    war | guerre
    peace | paix
    life | vie
    death | mort
    music | musique
    song | chanson
    game | jeu
    key | clé, clef
    clock | horloge
    letter | lettre
    paper | papier
    pen | stylo
    knife | couteau
    fork | fourchette
    spoon | cuillère, cuiller
    glass | verre
    bottle | bouteille
    plate | assiette
    kitchen | cuisine
    wall | mur
    roof | toit
    shoe | chaussure
    hat | chapeau
    shirt | chemise
    dress | robe
    doctor | médecin, docteur
    name | nom
    village | village
    two | deux
    three | trois
    four | quatre
    five | cinq
    six | six
    seven | sept
    eight | huit
    nine | neuf
    ten | dix
    hundred | cent
    thousand | mille
    yes | oui
    thanks | merci
    hello | bonjour, salut
    goodbye | au revoir
    always | toujours
    never | jamais
    often | souvent
    here | ici
    now | maintenant
    why | pourquoi
    how | comment
    where | où
    when | quand
    who | qui
    very | très
    with | avec
    without | sans
    under | sous
    but | mais
    """,
    "|",
)


def make_translation_en_fr(rng: random.Random) -> list[dict]:
    unique((en for en, _ in EN_FR), "translation_en-fr")
    return [{"input": en, "possible_translations": [t.strip() for t in fr.split(",")]} for en, fr in EN_FR]


# ---------------------------------------------------------------------------------------------------------------------
# cause_and_effect: a cause and its effect (the loader shows both in a seeded order and asks for the cause)

CAUSES_EFFECTS = lines(
    """
    The child dropped the glass. | The glass shattered on the floor.
    It rained all night. | The streets were flooded in the morning.
    The power went out. | The house went dark.
    She forgot to water the plant. | The plant wilted.
    He studied hard for the exam. | He passed the exam.
    The ice cream sat in the sun. | The ice cream melted.
    The alarm clock did not ring. | He was late for work.
    The dog heard a noise outside. | The dog started barking.
    The road was covered in ice. | The car skidded off the road.
    She ate too much candy. | She got a stomachache.
    The wind blew very hard. | The old tree fell over.
    The baby was hungry. | The baby cried.
    He left the milk out overnight. | The milk went sour.
    The team practiced every day. | The team won the championship.
    The tire ran over a nail. | The tire went flat.
    The boy touched the hot stove. | The boy burned his hand.
    The store lowered its prices. | More customers came to the store.
    She did not sleep last night. | She felt tired all day.
    The pipe burst. | Water flooded the basement.
    The singer caught a cold. | The concert was cancelled.
    He forgot his umbrella. | He got wet in the rain.
    The river overflowed. | The nearby fields were under water.
    The girl practiced the piano every day. | The girl played beautifully at the recital.
    The restaurant got a bad review. | Fewer people ate at the restaurant.
    The man ran a marathon. | His legs were sore the next day.
    The battery died. | The phone turned off.
    The sun came out. | The snow began to melt.
    The student cheated on the test. | The teacher gave the student a zero.
    The cat knocked over the vase. | The vase broke.
    A tree fell across the road. | Traffic was blocked for hours.
    The chef added too much salt. | The soup tasted salty.
    The boy lied to his parents. | His parents punished him.
    The company lost money. | The company fired some workers.
    The farmer planted seeds in spring. | The farmer harvested crops in autumn.
    There was a drought. | The crops died.
    He exercised every day. | He became stronger.
    The bridge was closed for repairs. | Drivers took a longer route.
    She won the lottery. | She bought a new house.
    The water in the kettle boiled. | The kettle whistled.
    The fire alarm went off. | Everyone left the building.
    The lamp was unplugged. | The lamp would not turn on.
    The child was stung by a bee. | The child's arm swelled up.
    The window was left open. | The room got cold.
    He skipped breakfast. | He was hungry before lunch.
    The movie was very funny. | The audience laughed.
    The bus broke down. | The passengers had to walk.
    She lost her keys. | She could not open her front door.
    The price of gas went up. | People drove less.
    She leaned against the freshly painted wall. | Her dress was stained with paint.
    The water in the pool was very cold. | The swimmer started shivering.
    The boy ate a spoiled sandwich. | The boy got sick.
    The teacher told a joke. | The students laughed.
    The computer overheated. | The computer shut down.
    The volcano erupted. | The nearby town was evacuated.
    The earthquake shook the city. | Many buildings collapsed.
    The ship hit an iceberg. | The ship sank.
    He stayed up late watching movies. | He overslept the next morning.
    The dog rolled in the mud. | The dog needed a bath.
    The girl fell off her bike. | The girl scraped her knee.
    The oven was too hot. | The cookies burned.
    The police officer saw the car speeding. | The driver got a ticket.
    The heater broke. | The apartment was freezing.
    The town built a new playground. | The children had a new place to play.
    The man did not pay his rent. | The landlord evicted him.
    The printer ran out of ink. | The pages came out blank.
    The waiter knocked over a glass of water. | The tablecloth got wet.
    The fish was left out of the water. | The fish died.
    The puppy chewed on the shoes. | The shoes were ruined.
    The sky grew dark. | The streetlights turned on.
    The campers did not put out their fire. | A forest fire started.
    The brakes failed. | The car crashed into a wall.
    The soccer player kicked the ball hard. | The ball flew into the net.
    The boy threw a rock at the window. | The window broke.
    The bakery ran out of flour. | The bakery could not make bread.
    The car ran out of gas. | The car stopped on the highway.
    The girl read the book many times. | The girl knew the story by heart.
    Her flight was delayed. | She missed her meeting.
    The roof leaked. | The ceiling was stained by water.
    The wind knocked down the power lines. | Thousands of homes lost electricity.
    The student forgot his homework. | The student lost points.
    The bread was left out for a week. | The bread grew mold.
    The lake froze. | The children went ice skating.
    The concert sold out. | Many fans could not get tickets.
    The boy ate his vegetables. | The boy got dessert.
    The elevator was broken. | They took the stairs.
    His phone rang loudly during the movie. | The audience was annoyed.
    The snowstorm lasted three days. | The schools were closed.
    She practiced her speech many times. | She gave a confident speech.
    The hiker got lost in the woods. | A rescue team searched for him.
    The grocery store had a sale on apples. | She bought three bags of apples.
    The boy grew taller. | His old clothes no longer fit.
    The athlete broke her ankle. | The athlete missed the season.
    The plane flew into a storm. | The plane shook violently.
    The battery in the clock ran out. | The clock stopped.
    She stirred sugar into her tea. | The tea tasted sweet.
    The magician pulled a rabbit out of a hat. | The children cheered.
    The man shouted in the library. | The librarian asked him to leave.
    The chef burned the steak. | The customer sent the steak back.
    The girl planted a sunflower seed. | A tall sunflower grew in the garden.
    The factory polluted the river. | The fish in the river died.
    The country went to war. | Many soldiers were killed.
    The ground was very dry. | The farmer watered the field.
    The kids left the gate open. | The dog ran away.
    The candle burned for hours. | The candle melted down.
    The man drank a lot of coffee. | The man could not fall asleep.
    The bridge collapsed. | Cars could not cross the river.
    The shoes were too small. | Her feet hurt.
    The boy stepped on a piece of glass. | The boy cut his foot.
    The storm knocked out the internet. | She could not send her email.
    The rain stopped. | A rainbow appeared.
    The worker fell from the ladder. | The worker broke his arm.
    The girl's balloon popped. | The girl started to cry.
    The bank raised interest rates. | Fewer people took out loans.
    The thief was caught. | The thief went to jail.
    The dog ate chocolate. | The dog had to go to the vet.
    The river dried up. | The boats could not sail.
    The sun set. | It got dark outside.
    The movie received great reviews. | The theaters were full.
    The baker forgot the yeast. | The bread did not rise.
    The woman left the faucet running. | The sink overflowed.
    The boy spent all day at the beach without sunscreen. | The boy got a sunburn.
    The tomatoes got plenty of sun. | The tomatoes ripened quickly.
    The little girl was afraid of the dark. | Her parents left a night light on.
    The baseball hit the car. | The windshield cracked.
    The heavy rain soaked the hillside. | There was a mudslide.
    The air conditioner broke. | The office became very hot.
    The company released a new phone. | Long lines formed outside the store.
    The referee blew the whistle. | The game stopped.
    The dog was left alone all day. | The dog chewed up the couch.
    She forgot to set her alarm. | She woke up late.
    The tourist did not speak the language. | The tourist struggled to order food.
    Smoke filled the kitchen. | The smoke alarm went off.
    The pot of water was left on the stove for hours. | The water boiled away.
    The hurricane hit the coast. | Thousands of people lost their homes.
    The boy saved his allowance. | The boy bought a new bike.
    The teacher was sick. | A substitute taught the class.
    The ship's engine failed. | The ship drifted at sea.
    The new highway opened. | The trip downtown became shorter.
    The kite's string snapped. | The kite flew away.
    The door was locked. | He climbed in through the window.
    The mirror fell off the wall. | The mirror cracked.
    The fisherman caught nothing all day. | The family ate beans for dinner.
    The soup was too hot. | She burned her tongue.
    The students made too much noise. | The teacher gave them extra homework.
    The storm damaged the corn fields. | The price of corn went up.
    The museum offered free entry. | The museum was crowded.
    The boy pulled the cat's tail. | The cat scratched him.
    The man slipped on a banana peel. | The man fell down.
    The runner tripped over a hurdle. | The runner lost the race.
    The firewood was wet. | The campfire would not light.
    The neighbor played loud music all night. | We could not sleep.
    An apple fell on his head. | He got a bump on his head.
    The actor forgot his lines. | The play had to stop.
    The dam broke. | The valley flooded.
    The girl waved at her friend. | Her friend waved back.
    Thick clouds blocked the sun. | It was cool all afternoon.
    The laptop fell into the pool. | The laptop stopped working.
    The coach praised the player. | The player felt proud.
    A mosquito bit her arm. | Her arm itched.
    The man found a wallet on the street. | The man took the wallet to the police.
    The boy broke his mother's favorite vase. | The boy apologized to his mother.
    Heavy snow piled up on the roof. | The roof caved in.
    The rooster crowed. | The farmer woke up.
    """,
    "|",
)


def make_cause_and_effect(rng: random.Random) -> list[dict]:
    unique((s for pair in CAUSES_EFFECTS for s in pair), "cause_and_effect sentences")
    for pair in CAUSES_EFFECTS:
        for s in pair:
            if s.count(".") != 1 or not s.endswith("."):
                raise ValueError(f"cause_and_effect: {s!r} must be one sentence ending in its only '.'")
    return [{"cause": c, "effect": e} for c, e in CAUSES_EFFECTS]


# ---------------------------------------------------------------------------------------------------------------------
# rhymes: families of words that rhyme and share the spelling of the rhyme; the answers are the rest of the family

RHYME_FAMILIES = [
    "cat hat bat mat rat sat fat flat chat that",
    "cake lake make take bake wake snake shake rake fake",
    "sing ring king wing thing bring spring swing sting",
    "light night right fight might sight bright tight flight",
    "hill fill bill mill pill still will spill chill drill",
    "day play say way stay gray pay may tray clay",
    "gold cold bold fold hold old sold told",
    "tree free see bee knee three flee",
    "rock sock clock block lock shock dock knock",
    "sun run fun bun gun spun",
    "bell well tell sell shell smell spell fell yell",
    "game name same came flame frame blame shame tame",
    "line mine fine nine pine shine wine spine vine",
    "can man fan pan plan van ran tan",
    "ear fear near dear clear year hear gear spear",
    "moon soon spoon noon balloon",
    "sound round found ground pound mound hound",
    "late gate plate date skate state mate crate",
    "ride side hide wide slide pride tide bride",
    "more core shore store bore score snore chore tore wore",
    "mail nail tail sail rail pail snail trail jail fail",
    "bug hug mug rug jug plug dug tug",
    "top hop mop shop stop drop pop crop",
    "ship trip lip hip dip sip drip zip chip",
    "best nest rest test west chest vest pest",
    "park dark bark mark shark spark lark",
    "rice mice nice dice price slice twice ice",
    "bank tank thank drank blank plank",
    "pink sink drink think wink link blink ink",
    "back pack black track snack sack crack stack",
    "heat meat seat beat neat treat wheat",
    "jump bump lump pump dump stump",
]


def make_rhymes(rng: random.Random) -> list[dict]:
    families = [f.split() for f in RHYME_FAMILIES]
    unique((w for f in families for w in f), "rhymes")
    return [{"input": w, "other_rhymes": [o for o in f if o != w]} for f in families for w in f]


# ---------------------------------------------------------------------------------------------------------------------
# the tasks, their makers and how many examples go to execute (the rest, up to max_induce, go to induce)

TASKS: dict[str, Callable[[random.Random], list[dict]]] = {
    "active_to_passive": make_active_to_passive,
    "antonyms": make_antonyms,
    "cause_and_effect": make_cause_and_effect,
    "common_concept": make_common_concept,
    "diff": make_diff,
    "first_word_letter": letter_task(lambda w: w[0]),
    "larger_animal": make_larger_animal,
    "letters_list": letter_task(lambda w: " ".join(w)),
    "negation": make_negation,
    "num_to_verbal": make_num_to_verbal,
    "orthography_starts_with": make_orthography_starts_with,
    "rhymes": make_rhymes,
    "second_word_letter": letter_task(lambda w: w[1]),
    "singular_to_plural": make_plurals,
    "sum": make_sum,
    "synonyms": make_synonyms,
    "taxonomy_animal": make_taxonomy_animal,
    "translation_en-fr": make_translation_en_fr,
}
MAX_EXECUTE = 100  # the paper's test set is at most 100 examples
MIN_INDUCE, MIN_EXECUTE = 100, 50


def input_key(example: dict) -> str:
    """What counts as an example's input when checking the splits for overlap."""
    if "cause" in example:
        return " || ".join(sorted([example["cause"], example["effect"]]))
    if "items" in example:
        return ", ".join(sorted(example["items"]))
    return example["input"]


def split(name: str, examples: list[dict], rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Shuffle, then one third (at most MAX_EXECUTE) to execute and the rest to induce; check sizes and overlap."""
    keys = [input_key(e) for e in examples]
    unique(keys, f"{name} inputs")
    examples = list(examples)
    rng.shuffle(examples)
    n_execute = min(MAX_EXECUTE, len(examples) // 3)
    execute, induce = examples[:n_execute], examples[n_execute:]
    if len(induce) < MIN_INDUCE or len(execute) < MIN_EXECUTE:
        raise ValueError(
            f"{name}: {len(induce)} induce / {len(execute)} execute, fewer than {MIN_INDUCE} / {MIN_EXECUTE}"
        )
    return induce, execute


def write_split(path: Path, examples: list[dict]) -> None:
    body = {"metadata": {"num_examples": len(examples)}, "examples": {str(i): e for i, e in enumerate(examples, 1)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(body, f, indent=1, ensure_ascii=False)
        f.write("\n")


def make_all(out: Path = OUT, seed: int = SEED) -> dict[str, tuple[int, int]]:
    """Write every task's two files under ``out``; returns {task: (n_induce, n_execute)}."""
    sizes = {}
    for name in sorted(TASKS):
        rng = random.Random(f"izkit-data:{seed}:{name}")
        induce, execute = split(name, TASKS[name](rng), rng)
        write_split(out / "induce" / f"{name}.json", induce)
        write_split(out / "execute" / f"{name}.json", execute)
        sizes[name] = (len(induce), len(execute))
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write induce/ and execute/ (default: data/)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed (default {SEED}, the committed files)")
    args = parser.parse_args(argv)
    sizes = make_all(args.out, args.seed)
    width = max(map(len, sizes))
    for name, (n_induce, n_execute) in sizes.items():
        print(f"{name:<{width}}  induce {n_induce:>3}  execute {n_execute:>3}")


if __name__ == "__main__":
    main()
