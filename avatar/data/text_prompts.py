"""Built-in English prompts for the speech corpus: hand-written sentences + a seeded generator.

Nothing is downloaded: the sentences below were written for this project (conversational lines
a companion might say, plus phonetically dense ones for bilabials, labiodentals, rounding and
open vowels), and :func:`generated_sentences` recombines word lists with templates.
"""

from __future__ import annotations

import numpy as np

BASE_SENTENCES: tuple[str, ...] = (
    "Hello! It's really nice to see you again.",
    "How was your day? Did anything fun happen?",
    "I was just thinking about that book you mentioned.",
    "Would you like to hear a short story before bed?",
    "Maybe we could go for a walk when the rain stops.",
    "That sounds wonderful, tell me more about it.",
    "I'm not sure I understand. Could you say that again?",
    "Good morning! Did you sleep well last night?",
    "Let's take a deep breath and start over.",
    "You did a great job on that, honestly.",
    "Oh no, that must have been frustrating.",
    "Remember to drink some water today.",
    "What kind of music have you been listening to lately?",
    "I love the way the morning light looks in autumn.",
    "We can figure this out together, one step at a time.",
    "Do you want to practice your presentation with me?",
    "Wow, that's amazing news! Congratulations!",
    "Hmm, let me think about that for a moment.",
    "Please pass the butter, the bread, and the marmalade.",
    "Big blue balloons bobbed above the busy bay.",
    "My mother made marvelous muffins on Monday morning.",
    "Five very fine violins vanished from the van.",
    "Father found a funny photo of a fluffy fox.",
    "Who knew the blue moon would bloom so soon?",
    "Old owls know the road home through the snow.",
    "Wide awake, we watched the waves wash away the wall.",
    "Ah, the calm lake is far larger than I thought.",
    "Pack a hot snack and a glass of apple juice.",
    "She sells sea shells on the sunny shore.",
    "Think of three things that make you thankful.",
    "The judge changed the charge at the last minute.",
    "Cheap cheese is rarely as good as it looks.",
    "Quickly, the clever cook cut the carrots.",
    "Red roses rarely grow near the river road.",
    "Little lambs leap lightly along the lane.",
    "Eat each green pea with ease and patience.",
    "Whales and wolves wander where we worry.",
    "Measure the pleasure of a leisurely afternoon.",
    "Her voice was usually soft, but today it was loud.",
    "Put the purple paper plates on the upper shelf.",
    "Bob bought a bubble bath for the baby.",
    "Vivian loves vivid velvet in the evening.",
    "Thank them for the thoughtful gift they brought.",
    "Do you ever wonder what the ocean floor looks like?",
    "I think the answer is somewhere in the middle.",
    "If you could travel anywhere, where would you go?",
    "The coffee shop on the corner opens at seven.",
    "It's okay to take a break when you need one.",
    "Tell me about your favourite memory from childhood.",
    "The cat stretched out in a warm patch of sunlight.",
    "Our train leaves at half past nine, so hurry up.",
    "I can help you plan the trip if you like.",
    "Some days are harder than others, and that's fine.",
    "Look at the stars, they're so bright tonight.",
    "Could you open the window? It's a bit warm in here.",
    "The soup needs more pepper and a pinch of salt.",
    "Yesterday I learned that octopuses have three hearts.",
    "You know, laughter really is the best medicine.",
    "We should celebrate, how about pizza and a movie?",
    "The museum has a new exhibit about ancient Egypt.",
    "Why do you think the sky turns orange at sunset?",
    "Every journey begins with a single small step.",
    "Keep your chin up, tomorrow is another day.",
    "Boil the water, then add the pasta slowly.",
    "Whoever made this cake deserves an award.",
    "Our neighbours adopted a puppy named Biscuit.",
    "The mountain path was steep, narrow and muddy.",
    "I'm sorry, I didn't mean to interrupt you.",
    "No way! You actually climbed the whole hill?",
    "Absolutely, I'd be happy to remind you at noon.",
    "A gentle breeze moved through the tall grass.",
    "Numbers like forty two and ninety nine are fun to say.",
    "The meeting moved from Tuesday to Thursday afternoon.",
    "Pour a cup of tea and relax for a while.",
    "Bright yellow buses rolled through the avenue.",
    "Oh, I almost forgot to water the plants!",
    "Jump, jog, or just jive to the jazz.",
    "Share your thoughts whenever you feel ready.",
    "The library is quiet, calm, and full of secrets.",
    "Yes, of course. No problem at all.",
    "Well, that was unexpected, wasn't it?",
    "Owen rowed the boat slowly over the open ocean.",
    "Hurry, the shop closes in about five minutes.",
    "Maybe we could bake bread on Sunday.",
    "Fresh fish and french fries, my favourite food.",
    "Umbrellas are useful when the weather is awful.",
    "The zoo keeper fed the zebras at noon.",
    "A thousand thoughts went through my mind.",
    "Is it true that bamboo grows very quickly?",
    "Heavy rain poured over the harbour all morning.",
)

_SUBJECTS = (
    "my friend",
    "the teacher",
    "our neighbour",
    "the little boy",
    "a curious cat",
    "the pilot",
    "my brother",
    "the old farmer",
    "your sister",
    "the baker",
    "a tired student",
    "the doctor",
    "the musician",
    "a famous painter",
    "the team",
    "my grandmother",
    "the waiter",
    "a stranger",
    "the gardener",
    "our guide",
    "the driver",
    "a young woman",
    "the captain",
    "the engineer",
)
_VERBS = (
    "found",
    "painted",
    "borrowed",
    "carried",
    "fixed",
    "remembered",
    "bought",
    "opened",
    "described",
    "photographed",
    "watched",
    "moved",
    "forgot",
    "shared",
    "cooked",
    "measured",
    "checked",
    "wrapped",
    "ordered",
    "delivered",
    "played",
    "chose",
    "cleaned",
    "noticed",
)
_OBJECTS = (
    "a blue umbrella",
    "the heavy box",
    "an old map",
    "three yellow apples",
    "the broken clock",
    "a warm blanket",
    "the morning paper",
    "a bowl of soup",
    "the violin",
    "a small boat",
    "the wooden chair",
    "a jar of honey",
    "the purple scarf",
    "a bag of oranges",
    "the window",
    "a shiny coin",
    "the garden gate",
    "a loaf of bread",
    "the empty bottle",
    "a pair of boots",
)
_PLACES = (
    "in the kitchen",
    "at the station",
    "near the river",
    "behind the library",
    "on the beach",
    "by the old bridge",
    "at the market",
    "under the table",
    "in the garden",
    "across the road",
    "at the museum",
    "on the top floor",
    "inside the van",
    "beside the fountain",
    "at home",
)
_TIMES = (
    "yesterday",
    "this morning",
    "last week",
    "on Friday",
    "before lunch",
    "after dinner",
    "at midnight",
    "on Sunday evening",
    "in the spring",
    "an hour ago",
    "every morning",
)
_ADJECTIVES = (
    "wonderful",
    "strange",
    "beautiful",
    "boring",
    "awesome",
    "lovely",
    "funny",
    "peaceful",
    "smooth",
    "rough",
    "gloomy",
    "cheerful",
    "huge",
    "tiny",
    "warm",
    "chilly",
    "quiet",
    "loud",
)
_QUESTIONS = (
    "Why did {s} leave {o} {p}?",
    "Have you seen {o} {p}?",
    "Where did {s} put {o}?",
    "Do you think {s} {v} {o} {t}?",
    "Who {v} {o} {p}?",
    "Was it really {a} {p} {t}?",
)
_STATEMENTS = (
    "{S} {v} {o} {p} {t}.",
    "{T}, {s} {v} {o}.",
    "I think {s} {v} {o} {p}.",
    "{S} said it was {a} {p}.",
    "{O} looked {a} {p}.",
    "{T} it felt {a}, so {s} {v} {o}.",
    "Honestly, {s} {v} {o}, and it was {a}!",
    "{S} {v} {o}, then {v2} {o2} {p}.",
)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def generated_sentences(n: int, seed: int) -> list[str]:
    """``n`` distinct template sentences, deterministic for ``seed``.

    >>> generated_sentences(2, 0) == generated_sentences(2, 0)
    True
    """
    rng = np.random.default_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    templates = _STATEMENTS + _QUESTIONS
    for _ in range(n * 50):
        if len(out) == n:
            break

        def pick(words: tuple[str, ...]) -> str:
            return str(words[rng.integers(len(words))])

        s, o, t = pick(_SUBJECTS), pick(_OBJECTS), pick(_TIMES)
        text = pick(templates).format(
            s=s,
            S=_cap(s),
            v=pick(_VERBS),
            v2=pick(_VERBS),
            o=o,
            O=_cap(o),
            o2=pick(_OBJECTS),
            p=pick(_PLACES),
            t=t,
            T=_cap(t),
            a=pick(_ADJECTIVES),
        )
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def sentence_pool(n_generated: int, seed: int) -> list[str]:
    """The hand-written sentences followed by ``n_generated`` template sentences."""
    return list(BASE_SENTENCES) + generated_sentences(n_generated, seed)


def sample_sentences(pool: list[str], n: int, seed: int) -> list[str]:
    """``n`` sentences drawn from ``pool`` without replacement (with, if ``n > len(pool)``)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(pool), size=n, replace=n > len(pool))
    return [pool[int(i)] for i in idx]
