# SPDX-License-Identifier: MIT
"""Our own check of BIDS-EMG sidecars, written from the BIDS specification's
Electromyography chapter (BEP042, merged into the specification; its schema
rules sidecars/emg.yaml and tabular_data/emg.yaml): the validators these
machines can install predate BIDS-EMG and report emg/ files as not included,
so they check none of this (docs/bids.md).

check_emg_json(obj) and check_channels_tsv(text) return a list of problems,
each naming the field or column and what is wrong; empty: conforms.
"""

import numbers

# *_emg.json. The spec: "These fields MUST be present" (EMGRequired, plus
# TaskName from EMGTaskInformation) and "Those fields SHOULD be present"
# (EMGRecommended, and the recommended hardware, task and institution fields).
EMG_REQUIRED = ("TaskName", "EMGPlacementScheme", "EMGReference", "SamplingFrequency",
                "PowerLineFrequency", "SoftwareFilters")
EMG_RECOMMENDED = ("ElectrodeMaterial", "ElectrodeType", "EMGChannelCount", "EMGGround",
                   "EMGPlacementSchemeDescription", "EpochLength", "HardwareFilters",
                   "InterelectrodeDistance", "RecordingDuration", "RecordingType",
                   "SubjectArtefactDescription", "TriggerChannelCount",
                   "Manufacturer", "ManufacturersModelName", "SoftwareVersions",
                   "DeviceSerialNumber", "AmplifierType", "ElectrodeManufacturer",
                   "ElectrodeManufacturersModelName", "TaskDescription", "Instructions",
                   "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName")
# the recommended fields rpmsd knows itself and so must write (the others,
# facts of the site and its electrodes, come from rpms-bids --sidecar)
EMG_RECOMMENDED_WRITTEN = ("EMGChannelCount", "EMGGround", "EMGPlacementSchemeDescription",
                           "HardwareFilters", "RecordingDuration", "RecordingType",
                           "TriggerChannelCount", "SoftwareVersions", "TaskDescription",
                           "Instructions")
RECORDING_TYPES = ("continuous", "epoched", "discontinuous")


def _number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _filters(v):
    """SoftwareFilters / HardwareFilters: "n/a", or an object of filter objects."""
    return v == "n/a" or (isinstance(v, dict) and v and
                          all(isinstance(x, dict) for x in v.values()))


TYPES = {
    "TaskName": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "EMGPlacementScheme": (lambda v: isinstance(v, str) and v != "", "a string"),
    "EMGReference": (lambda v: isinstance(v, str) and v != "", "a string"),
    "EMGGround": (lambda v: isinstance(v, str), "a string"),
    "SamplingFrequency": (lambda v: _number(v) and v > 0, "a number > 0 (Hz)"),
    "PowerLineFrequency": (lambda v: (_number(v) and v > 0) or v == "n/a",
                           "a number > 0 (Hz) or \"n/a\""),
    "SoftwareFilters": (_filters, "\"n/a\" or an object of filters"),
    "HardwareFilters": (_filters, "\"n/a\" or an object of filters"),
    "RecordingDuration": (lambda v: _number(v) and v >= 0, "a number >= 0 (s)"),
    "RecordingType": (lambda v: v in RECORDING_TYPES, "one of " + ", ".join(RECORDING_TYPES)),
    "EpochLength": (lambda v: _number(v) and v >= 0, "a number >= 0 (s)"),
    "EMGChannelCount": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                        "an integer >= 0"),
    "TriggerChannelCount": (lambda v: isinstance(v, int) and not isinstance(v, bool) and
                            v >= 0, "an integer >= 0"),
    "InterelectrodeDistance": (lambda v: _number(v) and v >= 0, "a number >= 0"),
}


def check_emg_json(obj, written=EMG_RECOMMENDED_WRITTEN):
    """Problems of one *_emg.json object: a required field missing, a field of
    the wrong type, a recommended field rpmsd knows missing."""
    if not isinstance(obj, dict):
        return ["_emg.json: not a JSON object"]
    out = []
    for k in EMG_REQUIRED:
        if k not in obj:
            out.append("%s: required (MUST), missing" % k)
    for k in written:
        if k not in obj:
            out.append("%s: recommended (SHOULD) and known to rpmsd, missing" % k)
    for k, v in obj.items():
        if k in TYPES and not TYPES[k][0](v):
            out.append("%s: %r is not %s" % (k, v, TYPES[k][1]))
    if obj.get("RecordingType") == "epoched" and "EpochLength" not in obj:
        out.append("EpochLength: recommended for epoched data, missing")
    return out


# *_channels.tsv (EMGChannels): name, type, units REQUIRED and first, in that
# order; the types of the restricted keyword list, upper case.
CHANNEL_REQUIRED = ("name", "type", "units")
CHANNEL_COLUMNS = CHANNEL_REQUIRED + (
    "description", "sampling_frequency", "signal_electrode", "reference_electrode", "group",
    "target_muscle", "placement_scheme", "placement_description", "interelectrode_distance",
    "low_cutoff", "high_cutoff", "notch", "status", "status_description")
CHANNEL_TYPES = ("VEOG", "HEOG", "EOG", "ECG", "EMG", "TRIG", "EYEGAZE", "PUPIL", "MISC",
                 "SYSCLOCK", "ADC", "DAC", "REF", "OTHER")


def check_channels_tsv(text, expect_names=None, expect_rate=None):
    """Problems of one *_channels.tsv: the required columns first, every row's
    cells, names unique (and those of the recording, in its order), types from
    the keyword list, numeric columns numbers or n/a."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return ["_channels.tsv: empty"]
    head = lines[0].split("\t")
    out = []
    if tuple(head[:3]) != CHANNEL_REQUIRED:
        out.append("columns: the first three must be name, type, units (got %s)"
                   % ", ".join(head[:3]))
    for c in head:
        if c not in CHANNEL_COLUMNS:
            out.append("column %s: not a column of the specification (not defined)" % c)
    if len(set(head)) != len(head):
        out.append("columns: a column twice")
    rows = [ln.split("\t") for ln in lines[1:]]
    if not rows:
        out.append("_channels.tsv: no channel")
    names = []
    for i, r in enumerate(rows, 2):
        if len(r) != len(head):
            out.append("line %d: %d cells for %d columns" % (i, len(r), len(head)))
            continue
        row = dict(zip(head, r))
        for c in CHANNEL_REQUIRED:
            if c in row and row[c] in ("", "n/a"):
                out.append("line %d: %s: required, empty" % (i, c))
        if "type" in row and row["type"] not in CHANNEL_TYPES:
            out.append("line %d: type %r: not a keyword of the list (upper case)"
                       % (i, row["type"]))
        for c in ("sampling_frequency", "low_cutoff", "high_cutoff", "interelectrode_distance"):
            if c in row and row[c] != "n/a":
                try:
                    float(row[c])
                except ValueError:
                    out.append("line %d: %s %r: not a number or n/a" % (i, c, row[c]))
        if expect_rate is not None and row.get("sampling_frequency") not in (None, "n/a"):
            try:
                if abs(float(row["sampling_frequency"]) - expect_rate) > 1e-9:
                    out.append("line %d: sampling_frequency %s, the recording's is %g"
                               % (i, row["sampling_frequency"], expect_rate))
            except ValueError:
                pass
        names.append(row.get("name"))
    if len(set(names)) != len(names):
        out.append("name: not unique")
    if expect_names is not None and names != list(expect_names):
        out.append("name: %s, the recording's channels are %s (in order)"
                   % (names, list(expect_names)))
    return out
