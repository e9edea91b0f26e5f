"""The words PII detection reads: what column names say, and the values that give a
column away (sex and race categories, common given names, titles).

Column names are matched after folding (`fold`: lower case, no accents) and splitting
into tokens, as whole token runs; see `farpoint.ml.pii_column.Column.says` for the one
exception (long words at a token's start or end). Values are compared folded too.
"""

from __future__ import annotations

import unicodedata

__all__ = [
    "BIRTH",
    "CARD",
    "COUNT_WORDS",
    "EMAIL",
    "ENDINGS",
    "GIVEN",
    "IBAN",
    "ID_LAST",
    "ID_WORDS",
    "IP",
    "LABELS",
    "LATITUDE",
    "LONGITUDE",
    "MEASURE_TAIL",
    "NAME_WORDS",
    "NATIONAL_ID",
    "NOT_NAME_WORDS",
    "NOT_PERSON",
    "NUMBER_LAST",
    "PARTICLES",
    "PERSON",
    "PERSON_ID",
    "PERSON_NAME",
    "PHONE",
    "PLACE",
    "PROTECTED",
    "PROTECTED_TAIL",
    "TITLES",
    "VERSION",
    "fold",
    "protected_vocabulary",
]


def fold(text: str) -> str:
    """Lower case without accents, so `Téléphone` and `telephone` read alike."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# What each kind is called in a finding's evidence.
LABELS = {
    "email": "e-mail",
    "phone": "phone number",
    "national_id": "national identifier",
    "card_number": "card number",
    "iban": "IBAN",
    "ip_address": "IP address",
    "coordinates": "location",
    "person_name": "a person's name",
    "person_identifier": "a person's identifier",
    "birth_date": "date of birth",
    "identifier": "identifier",
}

# -- what a column's name says -------------------------------------------------------------

EMAIL = _words("email emails mail mailaddress courriel correo correoelectronico epost emailid")
PHONE = _words(
    "phone phones phonenumber telephone tel telefon telefone telefono telefoon mobile mobil "
    "mobilephone cell cellphone handy handynummer msisdn fax whatsapp contactnumber portable "
    "gsm telnr telno"
)
NATIONAL_ID = _words(
    "ssn socialsecurity socialsecuritynumber nino nationalinsurance nationalinsurancenumber "
    "nir insee numerosecu secu bsn burgerservicenummer dni nie nif nationalid nationalidentifier "
    "nationalidnumber nhs nhsnumber taxid passport passportnumber passportno driverslicense "
    "driverslicence drivinglicence drivinglicense idcard identitycard personnummer cpr steuerid"
)
CARD = _words(
    "card cardnumber creditcard debitcard pan ccnumber ccnum cardno kreditkarte tarjeta "
    "cartebancaire paymentcard"
)
IBAN = _words("iban ibannumber bankaccount bankaccountnumber rekeningnummer kontonummer")
IP = _words(
    "ip ipv ipaddress ipaddr ipadresse remoteaddr remoteaddress clientip srcip dstip sourceip "
    "destip hostip"
)
VERSION = _words("version ver release build firmware fw sw semver")
LATITUDE = _words("lat latitude latitud breitengrad")
LONGITUDE = _words("lon lng longitude longitud laengengrad langengrad")
PLACE = _words(
    "coordinates coords coord latlon latlng latlong location geo gps position point "
    "geolocation geopoint geom geometry loc"
)
BIRTH = _words(
    "dob dateofbirth birthdate birthday birthdt bday born geburtsdatum geburtstag "
    "fechanacimiento fechadenacimiento datenaissance datedenaissance geboortedatum birthyear "
    "yearofbirth yob"
)
PERSON_NAME = _words(
    "firstname lastname givenname givennames familyname fullname surname forename forenames "
    "middlename maidenname birthname vorname nachname prenom apellido apellidos voornaam "
    "achternaam cognome personname patientname customername clientname employeename "
    "contactname membername studentname cardholdername accountholdername"
)
NAME_WORDS = _words("name names nom nombre naam nome")
PERSON = _words(
    "patient customer client user member employee staff student subscriber person citizen "
    "applicant passenger guest beneficiary insured policyholder contact driver donor voter "
    "buyer owner holder cardholder accountholder resident tenant visitor participant candidate "
    "doctor nurse physician clinician author recipient sender caller account"
)
PERSON_ID = _words(
    "mrn medicalrecordnumber medicalrecord hospitalnumber patientnumber username login "
    "userhandle screenname"
)
ID_WORDS = _words("id ids uuid guid identifier key pk number no nr num code ref")
ID_LAST = _words("id uuid guid identifier pk")
NUMBER_LAST = _words("number no nr num")
COUNT_WORDS = _words("num no n number count total qty quantity")
ENDINGS = _words("s es address addr number num no nr id") | {""}
MEASURE_TAIL = _words(
    "count counts cnt total sum qty quantity amount price cost rate ratio pct percent share "
    "avg mean median min max score size length len duration opened clicked verified valid "
    "flag type model domain provider status brand enabled consent optin bounced"
)
NOT_PERSON = _words(
    "product item sku city town country region state company org organisation organization "
    "vendor supplier brand file filename host hostname server device vehicle car model ward "
    "hospital department dept team street drug medication store shop warehouse project "
    "category tag column table field event page app site domain building battery machine "
    "sensor asset loan policy contract course room bed"
)

# -- what a person's name looks like -------------------------------------------------------

PARTICLES = _words(
    "van von de da del della der den di du la le bin binti ibn al el dos das ter ten y st mc"
)
TITLES = _words(
    "mr mrs ms miss mx dr prof sir dame lady lord rev mme mlle herr frau sr sra srta don dona "
    "master"
)
NOT_NAME_WORDS = _words(
    "street road avenue ave lane drive boulevard way place square park hospital clinic centre "
    "center university college school inc ltd llc corp corporation gmbh plc co company group "
    "bank city county hotel restaurant church airport station services solutions systems "
    "technologies industries traders trading foods motors labs partners north south east west "
    "new san santa los las saint port fort mount lake river valley bay beach island hills "
    "heights springs pro max mini plus ultra lite edition the and of for widget"
)
# Common given names across many cultures: the evidence that "Grace Chen" is a person and
# "Northwind Traders" is not. Not exhaustive, and it need not be: a column is judged on
# the share of its values that start with one.
GIVEN = _words(
    "james john robert michael william david richard joseph thomas charles christopher daniel "
    "matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy "
    "ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin "
    "scott brandon benjamin samuel gregory alexander frank patrick raymond jack dennis jerry "
    "tyler aaron jose adam nathan henry douglas zachary peter kyle noah ethan jeremy walter "
    "christian keith roger terry austin sean gerald carl harold dylan arthur lawrence jordan "
    "jesse bryan billy bruce gabriel joe logan albert alan eugene russell vincent philip bobby "
    "johnny bradley liam oliver lucas mason elijah harry oscar leo charlie alfie freddie archie "
    "theo mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy "
    "betty sandra margaret ashley kimberly emily donna michelle carol amanda melissa deborah "
    "stephanie dorothy rebecca sharon laura cynthia amy kathleen angela shirley brenda emma "
    "anna pamela nicole samantha katherine christine helen debra rachel carolyn janet maria "
    "catherine heather diane olivia julie joyce victoria ruth virginia lauren kelly christina "
    "joan evelyn judith andrea hannah megan cheryl jacqueline martha madison teresa gloria sara "
    "janice ann kathryn abigail sophia frances jean alice judy isabella julia grace amber "
    "denise danielle marilyn beverly charlotte natalie theresa diana brittany doris kayla "
    "alexis lori marie ava mia amelia isla chloe ella lily sophie juan carlos luis miguel "
    "javier antonio manuel francisco pedro alejandro diego pablo sergio jorge fernando rafael "
    "andres mateo santiago lucia sofia valentina camila martina paula carmen ana elena isabel "
    "rosa pilar beatriz ines pierre louis nicolas julien antoine francois hugo lea camille "
    "manon juliette amelie claire hans klaus jurgen stefan andreas wolfgang uwe lukas felix "
    "maximilian jonas leon lena katharina ursula monika petra sabine giuseppe giovanni marco "
    "francesco alessandro luca matteo lorenzo giulia francesca chiara alessia jan pieter daan "
    "sem bram lars sanne femke anouk erik anders johan magnus nils ingrid astrid freya sigrid "
    "ivan dmitri sergei alexei pavel olga natalia irina tatiana anastasia piotr tomasz "
    "katarzyna agnieszka mohammed muhammad ahmed ali omar hassan hussein youssef ibrahim khalid "
    "fatima aisha mariam layla zainab nour mehmet mustafa emre ayse elif zeynep reza amir rahul "
    "amit raj vikram arjun rohan sanjay priya anjali pooja neha kavya deepa sunita wei jing "
    "ming hui yan xin hiroshi takashi kenji yuki haruto sakura yui aiko minjun jiwoo kwame kofi "
    "chidi emeka tunde oluwaseun amara ngozi chiamaka adaeze thandiwe sipho themba zanele "
    "abebe dana maya nadia hana keiko farid yusuf tomas emil bruno"
)


# -- protected attributes, by name and by value --------------------------------------------

PROTECTED = {
    **dict.fromkeys(("sex", "sexe", "sexo", "geschlecht", "gender", "female"), "sex or gender"),
    **dict.fromkeys(("male", "isfemale", "ismale", "woman", "genderidentity"), "sex or gender"),
    **dict.fromkeys(("race", "racial", "ethnicity", "ethnic", "ethnicgroup", "ethnie"), "race"),
    **dict.fromkeys(("ethnicorigin", "etnia", "raza"), "race"),
    **dict.fromkeys(("religion", "religious", "faith", "religiousaffiliation"), "religion"),
    **dict.fromkeys(("disability", "disabled", "handicap", "handicapped"), "disability"),
    **dict.fromkeys(("impairment", "isdisabled", "hasdisability"), "disability"),
    **dict.fromkeys(("nationality", "citizenship", "nationalite", "nacionalidad"), "nationality"),
    **dict.fromkeys(("staatsangehorigkeit", "staatsangehoerigkeit"), "nationality"),
    **dict.fromkeys(("nativecountry", "countryofbirth", "birthcountry"), "nationality"),
    **dict.fromkeys(("countryoforigin", "nativelanguage", "mothertongue"), "nationality"),
    **dict.fromkeys(("maritalstatus", "marital", "married", "ismarried"), "marital status"),
    **dict.fromkeys(("civilstatus", "familienstand", "estadocivil"), "marital status"),
    **dict.fromkeys(("personalstatus", "etatcivil"), "marital status"),
    **dict.fromkeys(("sexualorientation", "sexuality", "lgbt", "lgbtq"), "sexual orientation"),
    **dict.fromkeys(("pregnancy", "pregnant", "ispregnant", "pregnancystatus"), "pregnancy"),
    **dict.fromkeys(("politicalparty", "politicalaffiliation", "politicalopinion"), "politics"),
    **dict.fromkeys(("tradeunion", "unionmember", "unionmembership"), "trade union membership"),
    **dict.fromkeys(("age", "ageyears", "edad", "alter", "agegroup", "ageband"), "age"),
    **dict.fromkeys(("agerange", "agebracket", "agecategory"), "age"),
}
PROTECTED_TAIL = _words(
    "status group grp code cd category cat desc description label flag band bucket bracket "
    "range years yrs y origin identity self reported selfreported affiliation background "
    "belief beliefs preference details info "
    "value type class cohort"
)
_MALE = _words("m male man men boy homme h mann mannlich masculino hombre masculin")
_FEMALE = _words("f female woman women girl femme frau weiblich femenino mujer feminin")
_SEX_VALUES = _MALE | _FEMALE | {
    "other", "non-binary", "nonbinary", "non binary", "x", "intersex", "trans", "transgender",
    "prefer not to say", "undisclosed", "divers", "d",
}  # fmt: skip
_RACE_SPECIFIC = frozenset((
    "white", "black", "asian", "hispanic", "latino", "latina", "latinx", "hispanic or latino",
    "not hispanic or latino", "african american", "black or african american",
    "american indian", "american indian or alaska native", "alaska native", "native american",
    "pacific islander", "native hawaiian", "native hawaiian or other pacific islander",
    "caucasian", "arab", "middle eastern", "south asian", "east asian", "white british",
    "white other", "black african", "black caribbean", "asian or asian british", "indigenous",
    "aboriginal", "maori",
))  # fmt: skip
_RACE_VALUES = _RACE_SPECIFIC | {"mixed", "multiracial", "two or more races", "other"}
_RELIGION_SPECIFIC = frozenset((
    "christian", "christianity", "catholic", "roman catholic", "protestant", "orthodox",
    "muslim", "islam", "jewish", "judaism", "hindu", "hinduism", "buddhist", "buddhism",
    "sikh", "sikhism", "atheist", "agnostic", "jain", "bahai", "shinto", "taoist",
))  # fmt: skip
_RELIGION_VALUES = _RELIGION_SPECIFIC | {"no religion", "other", "spiritual"}
_MARITAL_VALUES = frozenset((
    "single", "married", "divorced", "widowed", "widow", "widower", "separated",
    "civil partnership", "domestic partnership", "partnered", "never married", "cohabiting",
))  # fmt: skip
# (what the values are, accepted values, groups that must each appear, distinct values of
# each group that must appear): 90% of the values must be accepted ones.
_PROTECTED_VALUES: tuple[tuple[str, frozenset[str], tuple[frozenset[str], ...], int], ...] = (
    ("sex or gender", _SEX_VALUES, (_MALE, _FEMALE), 1),
    ("race or ethnicity", _RACE_VALUES, (_RACE_SPECIFIC,), 3),
    ("religion", _RELIGION_VALUES, (_RELIGION_SPECIFIC,), 3),
    ("marital status", _MARITAL_VALUES, (_MARITAL_VALUES,), 3),
)


def protected_vocabulary(folded: list[str]) -> tuple[str | None, int]:
    """Which protected category list folded values are drawn from, and how many are in it.

    The caller decides how many values are enough to judge by."""
    n = len(folded)
    present = set(folded)
    for vocab, accepted, required, at_least in _PROTECTED_VALUES:
        hits = sum(1 for x in folded if x in accepted)
        if hits >= 0.9 * n and all(len(present & r) >= at_least for r in required):
            return vocab, hits
    return None, 0
