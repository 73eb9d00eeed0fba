/* SPDX-License-Identifier: MIT */
/*
 * Event records: fixed-size, written by any thread into its own SPSC ring,
 * encoded to the JSON wire format by the publisher thread only.
 *
 * Wire format (docs/events.md): a ZeroMQ multipart message, topic frame
 * then a JSON body with "schema", a per-topic "seq", "t_mono_ns",
 * "t_wall_ns", "t_session_s", "sample", "t_rec_s" and the event's values.
 */
#ifndef RPMSD_EVENT_H
#define RPMSD_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Version of the JSON body layout; bumped on incompatible change. */
#define EVENT_SCHEMA_VERSION 1

/** Kinds of event. The topic follows from the kind. */
enum event_type {
	EVENT_NONE = 0,
	EVENT_BURST_ONSET,	/* rpms.burst, edge "onset" */
	EVENT_BURST_OFFSET,	/* rpms.burst, edge "offset" */
	EVENT_CALIBRATED,	/* rpms.state, state "calibrated" */
	EVENT_PULSE,		/* rpms.stim */
	EVENT_REFUSAL,		/* rpms.safety */
	EVENT_STATE,		/* rpms.state: armed/disarmed/started/ended/fault */
	EVENT_GAP,		/* rpms.source, kind "gap" */
	EVENT_SOURCE_OPENED,	/* rpms.source, kind "opened" */
	EVENT_SESSION,		/* rpms.state, "session_started" / "session_stopped" */
	EVENT_RECORD,		/* rpms.record: the session recording (record.c) */
	EVENT_ASSESS,		/* rpms.state, "assessment": an outcome block's numbers */
	EVENT_THRESHOLD,	/* rpms.threshold: a motor threshold probe or result */
	EVENT_TYPE_COUNT,
};

/** Topics, one per index of enum event_topic. */
enum event_topic {
	EVENT_TOPIC_BURST = 0,
	EVENT_TOPIC_STIM,
	EVENT_TOPIC_SAFETY,
	EVENT_TOPIC_STATE,
	EVENT_TOPIC_SOURCE,
	EVENT_TOPIC_HEARTBEAT,
	EVENT_TOPIC_EMG,	/* rpms.emg: made by the publisher (emg.c), no struct event */
	EVENT_TOPIC_RECORD,
	EVENT_TOPIC_THRESHOLD,
	EVENT_TOPIC_COUNT,
};

/** What happened to the session recording (rpms.record "kind"). */
enum event_record_kind {
	EVENT_RECORD_OPENED = 0,	/* a file was opened */
	EVENT_RECORD_CLOSED,		/* and closed */
	EVENT_RECORD_LOST,		/* EMG was lost on its way to the disk */
	EVENT_RECORD_ERROR,		/* writing failed: the file was closed */
	EVENT_RECORD_REPAIRED,		/* a file left open by a crash was made readable */
	EVENT_RECORD_KIND_COUNT,
};

#define EVENT_FILE_MAX 48

/** How a motor threshold procedure ended (rpms.threshold "outcome"). */
enum event_threshold_outcome {
	EVENT_THRESHOLD_FOUND = 0,	/* threshold_pct is the threshold */
	EVENT_THRESHOLD_CAPPED,		/* none at or below the cap */
	EVENT_THRESHOLD_LIMIT,		/* the pulse limit was reached */
	EVENT_THRESHOLD_STOPPED,	/* stopped: reason (a refusal, a disarm, ...) */
	EVENT_THRESHOLD_OUTCOME_COUNT,
};

/** What the policy did with a burst onset. */
enum event_action {
	EVENT_ACTION_NONE = 0,		/* offsets, or no policy */
	EVENT_ACTION_REQUESTED,		/* a stimulation request was posted */
	EVENT_ACTION_REFRACTORY,	/* ignored: within the refractory time */
	EVENT_ACTION_BUSY,		/* ignored: request mailbox full */
	EVENT_ACTION_CALIBRATING,	/* not possible: not calibrated yet */
};

/** Why a calibration is in doubt: rpms.state "calibrated" "issues"
 * (the same bits as detect.h's enum detect_cal_issue). */
enum event_cal_issue {
	EVENT_CAL_ARTEFACTS = 1u << 0,	/* "artefacts" */
	EVENT_CAL_UNSTEADY = 1u << 1,	/* "unsteady" */
	EVENT_CAL_HIGH_REST = 1u << 2,	/* "high_rest" */
};

/** State changes reported on rpms.state. */
enum event_state {
	EVENT_STATE_STARTED = 1,
	EVENT_STATE_ARMED,
	EVENT_STATE_DISARMED,
	EVENT_STATE_FAULT,
	EVENT_STATE_SOURCE_END,
	EVENT_STATE_STOPPING,
	EVENT_STATE_RECOVERED,	/* the source delivers again after a fault */
	EVENT_STATE_ESTOP,	/* the emergency stop disarmed the coil, or refused an arm */
	EVENT_STATE_CALIBRATING,	/* a recalibration (control) started */
	EVENT_STATE_PROTOCOL,	/* protocol parameters changed (control "set") */
	EVENT_STATE_COUNT,
};

/* Longest blinded arm code (blind.h BLIND_CODE_MAX), without the NUL. */
#define EVENT_ARM_CODE_MAX 16

/* Longest patient or session id (control "session_start"), without the NUL. */
#define EVENT_ID_MAX 36

#define EVENT_REASON_MAX 160
/** Channels an assessment event carries (source.h's SOURCE_MAX_CHANNELS). */
#define EVENT_ASSESS_CHANNELS 8

/** One event. Plain data: copied into and out of rings by value. */
struct event {
	uint32_t type;		/* enum event_type */
	uint32_t channel;	/* EMG channel, 0 when not channel-specific */
	uint64_t sample;	/* last sample index consumed when it happened */
	int64_t t_ns;		/* session clock (virtual time in fast replay) */
	int64_t mono_ns;	/* CLOCK_MONOTONIC when recorded */
	int64_t wall_ns;	/* CLOCK_REALTIME when recorded */
	union {
		struct {
			uint64_t edge_sample;	/* estimated onset/offset sample */
			double envelope;	/* envelope at the decision, µV */
			double threshold;	/* threshold crossed, µV */
			double baseline;	/* calibrated baseline, µV */
			uint32_t action;	/* enum event_action (onset) */
			uint32_t train_id;	/* request id when requested */
		} burst;
		struct {
			double baseline;	/* median envelope at rest, µV */
			double spread;		/* robust spread (1.4826 MAD), µV */
			double on_threshold;	/* µV */
			double off_threshold;	/* µV */
			uint64_t artefacts;	/* samples of the window replaced */
			double unsteady_s;	/* of the window, not at rest */
			uint32_t issues;	/* enum event_cal_issue bits */
		} calib;
		struct {
			uint32_t train_id;	/* which request */
			uint32_t index;		/* 0-based pulse in the train */
			uint32_t count;		/* pulses in the train */
			uint32_t width_us;
			double intensity_pct;
			int64_t sched_ns;	/* scheduled, session clock */
			int64_t actual_ns;	/* fired, session clock */
			double temperature_c;	/* coil temperature before, NAN unknown */
			uint64_t trigger_sample;/* burst onset decision that asked */
			/*
			 * actual_ns on the sample clock: a fractional sample
			 * index (sample k is at k / rate); NAN when unknown.
			 */
			double sample_at_fire;
			/*
			 * Delivery verification (coil ABI 1.2 pulse_info):
			 * trigger to confirm edge of this pulse, ns; 0 or
			 * less: not measured (so a zeroed event has none).
			 */
			int64_t confirm_ns;
			/*
			 * The device's read-back of an earlier pulse (it comes
			 * late, over serial): di/dt in A/µs of the pulse
			 * didt_train_id/didt_index; valid only when didt_valid.
			 */
			double didt;
			uint32_t didt_train_id;
			uint32_t didt_index;
			uint32_t didt_valid;
		} pulse;
		struct {
			uint32_t rule;		/* enum safety_rule */
			uint32_t train_id;
			uint32_t index;		/* pulse refused */
			uint32_t dropped;	/* pulses of the train not delivered */
			double value;		/* measured value the rule saw */
			double limit;		/* the limit it broke */
			int64_t sched_ns;
			/*
			 * A summary (kind "summary") stands for @refusals
			 * refusals of @rule that were not published one by
			 * one; the rest describes the last of them, @dropped
			 * is their sum, @first_sched_ns the first one's time.
			 * A single refusal: summary 0, refusals 1.
			 */
			uint32_t summary;
			uint32_t refusals;
			int64_t first_sched_ns;
		} refusal;
		struct {
			uint64_t first_sample;	/* first missing sample */
			uint64_t lost;		/* samples missing */
			uint64_t gaps_total;	/* gaps so far, this one included */
			uint64_t lost_total;	/* samples missing so far */
			uint32_t estimated;	/* 1: from CLOCK_MONOTONIC, 0: timestamps */
		} gap;
		struct {
			double rate_hz;
			uint32_t channels;
			uint32_t block_frames;
			uint32_t time_source;	/* enum source_time */
		} opened;
		struct {
			uint32_t state;		/* enum event_state */
			int32_t code;		/* negative errno for faults, else 0 */
			char reason[EVENT_REASON_MAX];
			/*
			 * The stim thread's: when it happened on the sample
			 * clock, as a pulse's sample_at_fire (NAN: unknown; the
			 * recording's annotation then takes the sample).
			 */
			double at_sample;
		} state;
		struct {
			uint64_t pulses;	/* stopped: pulses delivered in it */
			uint32_t started;	/* 1: started, 0: stopped */
			char patient_id[EVENT_ID_MAX + 1];
			char session_id[EVENT_ID_MAX + 1];
			char arm_code[EVENT_ARM_CODE_MAX + 1];	/* blinded arm, "" none */
		} session;
		struct {
			uint32_t kind;		/* enum event_record_kind */
			int32_t code;		/* negative errno for errors, else 0 */
			uint64_t records;	/* data records in the file */
			uint64_t lost;		/* samples lost so far (zero-filled) */
			uint64_t annotations;	/* written so far */
			uint64_t clipped;	/* samples clipped at the range so far */
			char file[EVENT_FILE_MAX];	/* file name, no directory */
		} record;
		struct {
			uint64_t first_sample;	/* the block's first sample */
			uint64_t samples;	/* processed in it (gaps left out) */
			uint32_t phase;		/* 0 pre, 1 post (course_db.h's order) */
			uint32_t kind;		/* 0 rest, 1 stretch, 2 cci, 3 mvc (course_db.h's order) */
			uint32_t channels;
			int32_t code;		/* 0 stored in the course database, else -errno */
			float rms_uv[EVENT_ASSESS_CHANNELS];
			float bursts_per_min[EVENT_ASSESS_CHANNELS];
			float active_pct[EVENT_ASSESS_CHANNELS];
			/* cci: the index, its windows, the pair (channel indices) */
			float cci_pct;
			uint32_t windows;
			uint32_t agonist, antagonist;
			/*
			 * stretch: the muscle (channel index), the way the
			 * angle went, the stretches found that way, those with a
			 * DSRT, and the fit (NAN when refused: too few, too narrow)
			 */
			uint32_t muscle;
			int32_t direction;
			uint32_t stretches, fitted;
			float tsrt_deg, slope_s, r2;
		} assess;
		struct {
			uint32_t result;	/* 0: a probe, 1: the result */
			uint32_t probe;		/* probe: its number, from 1 */
			uint32_t response;	/* probe: reached the criterion */
			uint32_t outcome;	/* result: enum event_threshold_outcome */
			uint32_t pulses;	/* probes given so far */
			double intensity_pct;	/* probe: its output */
			double amplitude_uv;	/* probe: M-wave peak-to-peak, NAN unknown */
			double sample_at_fire;	/* probe: its pulse on the sample clock */
			double threshold_pct;	/* result: found, else NAN */
			double cap_pct;		/* the cap it ran under */
			char reason[EVENT_REASON_MAX];	/* result: why it ended so */
		} threshold;
	} u;
};

/** Topic of an event kind; EVENT_TOPIC_COUNT for an unknown type. */
enum event_topic event_topic_of(const struct event *ev);

/** Topic string of a topic index ("rpms.burst", ...); NULL if out of range. */
const char *event_topic_name(enum event_topic topic);

/** Name of a state as rpms.state publishes it ("armed", ...); NULL if unknown. */
const char *event_state_name(uint32_t state);

/**
 * Fill the three timestamps of @ev: t_ns from the caller (session clock),
 * mono_ns and wall_ns from the kernel. RT-safe (vDSO clock reads).
 */
void event_stamp(struct event *ev, int64_t t_ns);

/**
 * Make @ev an rpms.state event (everything else zeroed); @reason is cut to
 * EVENT_REASON_MAX - 1 bytes. RT-safe.
 */
void event_state_init(struct event *ev, enum event_state state, int code,
		      const char *reason, uint64_t sample);

/**
 * Encode the JSON body of @ev.
 * @param seq      per-topic sequence number
 * @param rate_hz  sampling rate, for t_rec_s (0: omitted)
 * @return length written (excluding NUL), -ENOSPC when @len is too small
 *         (@buf then holds a NUL-terminated prefix that is not valid JSON),
 *         or -EINVAL for an unknown type, state or action
 */
int event_to_json(const struct event *ev, uint64_t seq, double rate_hz,
		  char *buf, size_t len);

/*
 * A bounded JSON object writer over a caller's buffer. event_to_json is
 * built on it; the publisher uses it for the bodies it makes itself
 * (rpms.heartbeat, the rpms.state "overflow" event) so that every body
 * shares one encoding of the common fields. Never allocates. Once a write
 * does not fit, later writes do nothing and event_json_end returns -ENOSPC.
 */
struct event_json {
	char *buf;
	size_t len;
	size_t pos;		/* buf[pos] is the terminating NUL */
	bool overflow;
	bool need_comma;
};

/** Start an object ("{") in @buf of @len bytes. */
void event_json_begin(struct event_json *w, char *buf, size_t len);

/**
 * Write the common fields, in wire order: schema, topic, seq, t_mono_ns,
 * t_wall_ns, t_wall, t_session_s (only if @with_session), sample, t_rec_s
 * (only if @rate_hz > 0), channel. Times and sample come from @ev.
 */
void event_json_common(struct event_json *w, enum event_topic topic,
		       uint64_t seq, const struct event *ev, double rate_hz,
		       bool with_session);

/** Members. Keys and strings are escaped; @maxlen bounds @s like strnlen. */
void event_json_u64(struct event_json *w, const char *key, uint64_t v);
void event_json_i64(struct event_json *w, const char *key, int64_t v);
/** A double with 9 significant digits; NAN and infinities become null. */
void event_json_double(struct event_json *w, const char *key, double v);
void event_json_bool(struct event_json *w, const char *key, bool v);
void event_json_str(struct event_json *w, const char *key, const char *s,
		    size_t maxlen);

/** A member whose value is null (unknown, or none). */
void event_json_null(struct event_json *w, const char *key);

/**
 * Open an array member @key; add items with event_json_item_*, close it
 * with event_json_array_end.
 */
void event_json_array(struct event_json *w, const char *key);
void event_json_array_end(struct event_json *w);
void event_json_item_str(struct event_json *w, const char *s, size_t maxlen);
/** An item like event_json_double: NAN and infinities become null. */
void event_json_item_double(struct event_json *w, double v);

/** Open a nested object member @key; close it with event_json_object_end. */
void event_json_object(struct event_json *w, const char *key);
void event_json_object_end(struct event_json *w);

/**
 * Close the object.
 * @return length of the body (excluding NUL), or -ENOSPC
 */
int event_json_end(struct event_json *w);

#endif /* RPMSD_EVENT_H */
