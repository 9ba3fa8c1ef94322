#!/usr/bin/env python3
"""Writes registry/commonpasswords.txt: passwords people pick most often.

Nothing is downloaded. The list is built from patterns that every published
analysis of leaked password sets agrees on: a short list of very common
words and names, followed by digits, years or a symbol; number runs and
repeated characters; keyboard walks. Only entries of at least 10
characters are kept (shorter ones fail the length rule anyway), lower-case
(the check compares case-insensitively), one per line, sorted.

Run: python3 scripts/gen-common-passwords.py > registry/commonpasswords.txt
"""

MIN = 10

words = """password passw0rd p@ssword p@ssw0rd pa55word iloveyou princess welcome sunshine
football baseball basketball soccer hockey dragon monkey letmein master shadow
superman batman spiderman trustno1 qwerty qwertz azerty admin administrator login
starwars whatever freedom computer michael jennifer jessica ashley charlie daniel
jordan thomas hunter ranger buster pepper ginger summer winter spring autumn
flower butterfly chocolate cookie cheese banana orange purple yellow silver golden
diamond angel angels lovely loveme babygirl mustang corvette ferrari porsche
harley matrix hello hello123 secret secure changeme default guest test tester
testing internet google facebook linkedin microsoft windows apple samsung nintendo
pokemon minecraft fortnite naruto liverpool chelsea arsenal barcelona juventus
manchester london paris berlin america canada europe asia africa australia
mother father family friends forever together heaven jesus christ blessed
victoria elizabeth charlotte natasha anthony william robert joshua matthew andrew
nicole melissa amanda michelle samantha stephanie christina
access welcome1 zxcvbnm asdfgh asdfghjkl qazwsx monday friday sunday january
december october november september august killer dolphin tigger hannah
bailey maggie sophie cheyenne chicken pussycat kitten doggie puppy lakers yankees
cowboys steelers eagles packers patriots raiders warriors dallas chicago
mercedes nirvana metallica slipknot rockstar rocknroll music guitar
zaq12wsx 1qaz2wsx qwe123 abc123 abcdef abcdefg letmein1 master1 shadow1
sunflower rainbow blink182 fuckyou fuckoff asshole bitch hottie sexy
beautiful superstar superman1 whatever1 lovelove iloveu iloveyou1 loveyou
myspace password1 password12 qwerty1 qwerty12 qwertyui trustme
company office server database network backend frontend developer github
gitlab jenkins docker kubernetes couchdb couchnpm registry npmjs npmrc
""".split()

suffixes = ["", "1", "12", "123", "1234", "12345", "123456", "1234567", "!", "1!", "123!",
            "@123", "#1", "01", "007", "69", "99", "2000", "00", "11", "111", "321", "?",
            "1234!", "12345!"]
# Years go after the most common words only (the first 60 of the list).
years = [str(y) for y in range(1980, 2031)] + [str(y) + "!" for y in range(2015, 2031)]

out = set()
for i, w in enumerate(words):
    for s in suffixes + (years if i < 60 else []):
        for form in (w + s, w + w if not s else None):
            if form and len(form) >= MIN:
                out.add(form.lower())

# number runs, repeats and their neighbours
digits = "0123456789"
for n in range(MIN, 17):
    out.add(("1234567890" * 2)[:n])
    out.add(("0123456789" * 2)[:n])
    out.add(("9876543210" * 2)[:n])
    out.add(("0987654321" * 2)[:n])
    for c in digits + "abcdefghijklmnopqrstuvwxyz!*.":
        out.add(c * n)
for a in range(10, 100):
    out.add(str(a) * 5)
for base in ["12", "123", "1234", "12345", "123123", "abc", "abc123", "qwe", "asd",
             "zxc", "qaz", "aa", "ab", "ha", "lol", "xo", "01", "69", "007"]:
    s = base
    while len(s) < 17:
        s += base
        if len(s) >= MIN:
            out.add(s)
out.update(["12345678910", "1234567891", "123456789a", "a123456789", "123456789q",
            "q123456789", "1234567890a", "1234567890q", "abcdefghij", "abcdefghijk",
            "abcdefghijkl", "abcd123456", "abcde12345", "abc1234567", "a1b2c3d4e5",
            "a1b2c3d4e5f6", "1a2b3c4d5e", "0000000001", "1000000000", "1111111112",
            "1122334455", "11223344556677", "1212121212", "1231231234", "1357924680",
            "2468013579", "5555555555", "6969696969", "7777777777", "8675309867",
            "987654321a", "a987654321"])

# keyboard walks
rows = ["1234567890", "qwertyuiop", "asdfghjkl;", "zxcvbnm,./", "qwertzuiop", "azertyuiop",
        "!@#$%^&*()"]
for r in rows:
    for n in range(MIN, len(r) + 1):
        out.add(r[:n])
    out.add(r + r[:3])
    out.add(r[::-1])
for w in ["qwertyuiop", "asdfghjkl", "zxcvbnm", "qwerty", "asdfgh", "zxcvbn", "qwertz", "azerty"]:
    for s in ["1", "12", "123", "1234", "12345", "123456", "!", "1!", "123!", w]:
        if len(w + s) >= MIN:
            out.add(w + s)
out.update(["1q2w3e4r5t", "1q2w3e4r5t6y", "1q2w3e4r5t6y7u", "q1w2e3r4t5", "q1w2e3r4t5y6",
            "1qaz2wsx3edc", "1qaz2wsx3edc4rfv", "qazwsxedcrfv", "qazwsxedcrfvtgb", "zaq12wsxcde3",
            "zaq1xsw2cde3", "1qazxsw23edc", "qwertyuiop[]", "qwerasdfzxcv", "asdfqwerzxcv",
            "qweasdzxc123", "qweasdzxcv", "1qaz!qaz2wsx", "1qaz@wsx3edc", "!qaz2wsx#edc",
            "qwe123qwe123", "qwertyqwerty", "asdasdasdasd", "zxczxczxczxc", "poiuytrewq",
            "lkjhgfdsa1", "mnbvcxz123", "qwerty123456", "qwerty1234", "qwertyu123",
            "1qaz2wsx!@", "!qaz@wsx#edc", "q2w3e4r5t6", "zxcvbnm123", "asdfghjkl123",
            "passwordpassword", "password1234", "password12345", "administrator1",
            "adminadmin", "admin12345", "admin123456", "adminadmin123", "rootroot12",
            "root123456", "toortoor12", "useruser12", "user123456", "test123456",
            "testtest12", "testtest123", "guest12345", "demo123456", "changeme123",
            "changeme12", "welcome123", "welcome1234", "letmein123", "letmein1234",
            "iloveyou12", "iloveyou123", "iloveyou1234", "ihateyou123", "princess123",
            "sunshine123", "football123", "baseball123", "superman123", "starwars123",
            "pokemon123", "minecraft123", "qwertyuiop1", "1234qwer", "1234qwerasdf",
            "1234qwerasdfzxcv", "q1w2e3r4q1w2e3r4", "abcd1234abcd", "abc123abc123",
            "p@ssw0rd123", "p@ssw0rd1234", "p@ssword123", "passw0rd123", "passw0rd1234",
            "pa$$w0rd123", "pa$$word123", "password!@#", "password@123", "password#123",
            "password_123", "password-123", "password.123", "mypassword", "mypassword1",
            "mypassword123", "newpassword", "newpassword1", "newpassword123", "oldpassword",
            "secretpassword", "supersecret", "supersecret1", "supersecret123", "topsecret123",
            "nopassword", "nopassword1", "thisismypassword", "letmeinplease", "opensesame",
            "opensesame1", "correcthorsebatterystaple", "trustno1trustno1", "thequickbrownfox",
            "iloveyouforever", "iloveyousomuch", "loveyouforever", "imissyou123",
            "blahblahblah", "whatever123", "nothing123", "something1", "something123",
            "everything", "everything1", "somebody123", "anything123", "helloworld",
            "helloworld1", "helloworld123", "hello12345", "hellohello", "hellokitty",
            "hellokitty1", "welcomehome", "goodmorning", "goodnight1", "happybirthday",
            "happydays1", "sweetheart", "sweetheart1", "babyboy123", "babygirl12",
            "babygirl123", "princesa123", "tequiero123", "teamo12345", "contraseña",
            "contrasena", "contrasena1", "motdepasse", "motdepasse1", "passwort123",
            "passwort1234", "wachtwoord", "wachtwoord1", "salasana123", "haslo12345",
            "parola1234", "senha12345", "qwerty123!", "qwerty!@#", "1qaz2wsx3e",
            "computer123", "internet123", "master12345", "dragon12345", "monkey12345",
            "shadow12345", "michael123", "jennifer123", "jordan2323", "michael2323",
            "chocolate1", "chocolate123", "butterfly1", "butterfly123", "basketball1",
            "basketball123", "spiderman1", "spiderman123", "liverpool1", "liverpool123",
            "manchester1", "barcelona1", "juventus123", "chelsea123", "arsenal123",
            "metallica1", "slipknot666", "starwars12", "batman12345", "pokemon1234",
            "naruto1234", "fortnite123", "minecraft1", "playstation", "playstation1",
            "playstation2", "playstation3", "playstation4", "playstation5", "xboxlive123",
            "nintendo64", "counterstrike", "administrator123", "sysadmin123", "webmaster1",
            "webmaster123", "postmaster", "superuser1", "superuser123", "database123",
            "developer1", "developer123", "company123", "company1234", "letmein!23",
            "welcome@123", "welcome#123", "admin@1234", "admin@12345", "admin#1234",
            "p@55w0rd123", "q1w2e3r4t5y6u7i8", "1a2s3d4f5g", "1z2x3c4v5b", "z1x2c3v4b5",
            "a1s2d3f4g5", "!@#$%^&*()_+", "!@#$%^&*()", "1234567890-=", "`1234567890"])

for p in sorted(out):
    if len(p) >= MIN and "\n" not in p:
        print(p)
