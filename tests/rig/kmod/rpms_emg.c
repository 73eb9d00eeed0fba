// SPDX-License-Identifier: GPL-2.0
/*
 * rpms_emg: a test-only IIO device for rpmsd's VM rig (tests/rig).
 *
 * What: a buffered IIO device with RPMS_EMG_CHANNELS signed 16-bit
 * channels (in_voltage0, in_voltage1) and a soft timestamp, paced by
 * whatever IIO trigger user space attaches (the rig uses the hrtimer
 * trigger), playing a waveform loaded at run time. Each trigger pushes
 * the next frame of the waveform, in a loop, from frame 0 every time the
 * buffer is enabled.
 *
 * Why: so that rpmsd reads EMG through the kernel's IIO core, trigger,
 * kfifo buffer and character device, and libiio's local backend, on the
 * real PREEMPT_RT kernel, without an amplifier. The IIO dummy driver only
 * streams constants; the host-side fake (tests/iio) is a FIFO that never
 * refuses anything.
 *
 * Use (IIO configfs, industrialio-sw-device):
 *
 *   mkdir /sys/kernel/config/iio/devices/rpms_emg/emg0     (IIO name "emg0")
 *   cat wave.s16 > /sys/kernel/config/iio/devices/rpms_emg/emg0/waveform
 *   cat /sys/kernel/config/iio/devices/rpms_emg/emg0/frames
 *
 * The waveform is little-endian s16 frames of RPMS_EMG_CHANNELS samples
 * (interleaved), at most RPMS_EMG_MAX_BYTES. It can be replaced at any
 * time; playback then restarts at frame 0. Without one the device streams
 * zeros. The device's sampling_frequency is only recorded (rpmsd reads it
 * to know the rate): the trigger sets the pace, so set both to the same
 * value. The scale is fixed at 1 uV per count (0.001 mV).
 *
 * The timestamp channel (the trigger's time, taken when its interrupt is
 * handled) is there when the module parameter timestamp is 1 at mkdir time.
 * Under QEMU's TCG the hrtimer trigger misses ticks, and rpmsd rightly
 * counts every late tick as a gap; the rig then makes the device without it.
 */
#include <linux/bitops.h>
#include <linux/configfs.h>
#include <linux/iio/buffer.h>
#include <linux/iio/iio.h>
#include <linux/iio/sw_device.h>
#include <linux/iio/trigger.h>
#include <linux/iio/trigger_consumer.h>
#include <linux/iio/triggered_buffer.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <asm/unaligned.h>

#define RPMS_EMG_CHANNELS	2
#define RPMS_EMG_FRAME_BYTES	(RPMS_EMG_CHANNELS * sizeof(s16))
#define RPMS_EMG_MAX_BYTES	(4 * 1024 * 1024)
#define RPMS_EMG_DEFAULT_HZ	1000
#define RPMS_EMG_MAX_HZ		100000

struct rpms_emg {
	struct mutex lock;	/* the waveform, its position and the rate */
	s16 *wave;		/* frames x RPMS_EMG_CHANNELS, CPU order */
	size_t frames;
	size_t pos;		/* next frame to push */
	int rate_hz;
	u64 pushed;		/* frames pushed since the device was made */
	/* One scan: the enabled channels packed, then the timestamp. */
	struct {
		__le16 ch[RPMS_EMG_CHANNELS];
		s64 ts __aligned(8);
	} scan;
};

#define RPMS_EMG_CHAN(i) {						\
	.type = IIO_VOLTAGE,						\
	.indexed = 1,							\
	.channel = (i),							\
	.info_mask_separate = BIT(IIO_CHAN_INFO_RAW),			\
	.info_mask_shared_by_type = BIT(IIO_CHAN_INFO_SCALE),		\
	.info_mask_shared_by_all = BIT(IIO_CHAN_INFO_SAMP_FREQ),	\
	.scan_index = (i),						\
	.scan_type = {							\
		.sign = 's',						\
		.realbits = 16,						\
		.storagebits = 16,					\
		.endianness = IIO_LE,					\
	},								\
}

static const struct iio_chan_spec rpms_emg_channels[] = {
	RPMS_EMG_CHAN(0),
	RPMS_EMG_CHAN(1),
	IIO_CHAN_SOFT_TIMESTAMP(RPMS_EMG_CHANNELS),
};

static bool rpms_emg_timestamp = true;
module_param_named(timestamp, rpms_emg_timestamp, bool, 0644);
MODULE_PARM_DESC(timestamp, "devices made from now on have a timestamp channel (default 1)");

/* The sample of channel @ch at the current position. Call with the lock. */
static s16 rpms_emg_sample(struct rpms_emg *st, unsigned int ch)
{
	if (!st->frames) {
		return 0;
	}
	return st->wave[st->pos * RPMS_EMG_CHANNELS + ch];
}

static irqreturn_t rpms_emg_trigger_handler(int irq, void *p)
{
	struct iio_poll_func *pf = p;
	struct iio_dev *indio_dev = pf->indio_dev;
	struct rpms_emg *st = iio_priv(indio_dev);
	unsigned int i = 0;
	int bit;

	mutex_lock(&st->lock);
	memset(&st->scan, 0, sizeof(st->scan));
	for_each_set_bit(bit, indio_dev->active_scan_mask, indio_dev->masklength) {
		if (bit >= RPMS_EMG_CHANNELS) {
			break;	/* the timestamp: placed by the push below */
		}
		st->scan.ch[i++] = cpu_to_le16(rpms_emg_sample(st, bit));
	}
	if (st->frames) {
		st->pos = (st->pos + 1) % st->frames;
	}
	st->pushed++;
	iio_push_to_buffers_with_timestamp(indio_dev, &st->scan, pf->timestamp);
	mutex_unlock(&st->lock);
	iio_trigger_notify_done(indio_dev->trig);
	return IRQ_HANDLED;
}

/* Every enable starts the waveform again: sample 0 is frame 0. */
static int rpms_emg_preenable(struct iio_dev *indio_dev)
{
	struct rpms_emg *st = iio_priv(indio_dev);

	mutex_lock(&st->lock);
	st->pos = 0;
	mutex_unlock(&st->lock);
	return 0;
}

static const struct iio_buffer_setup_ops rpms_emg_buffer_ops = {
	.preenable = rpms_emg_preenable,
};

static int rpms_emg_read_raw(struct iio_dev *indio_dev, struct iio_chan_spec const *chan,
			     int *val, int *val2, long mask)
{
	struct rpms_emg *st = iio_priv(indio_dev);

	switch (mask) {
	case IIO_CHAN_INFO_RAW:
		mutex_lock(&st->lock);
		*val = rpms_emg_sample(st, chan->channel);
		mutex_unlock(&st->lock);
		return IIO_VAL_INT;
	case IIO_CHAN_INFO_SCALE:
		*val = 0;
		*val2 = 1000;	/* 0.001 mV = 1 uV per count */
		return IIO_VAL_INT_PLUS_MICRO;
	case IIO_CHAN_INFO_SAMP_FREQ:
		mutex_lock(&st->lock);
		*val = st->rate_hz;
		mutex_unlock(&st->lock);
		return IIO_VAL_INT;
	default:
		return -EINVAL;
	}
}

static int rpms_emg_write_raw(struct iio_dev *indio_dev, struct iio_chan_spec const *chan,
			      int val, int val2, long mask)
{
	struct rpms_emg *st = iio_priv(indio_dev);

	if (mask != IIO_CHAN_INFO_SAMP_FREQ) {
		return -EINVAL;
	}
	/* Whole hertz: libiio writes "1000.000000", parsed as 1000 and 0 µHz. */
	if (val <= 0 || val > RPMS_EMG_MAX_HZ || val2 != 0) {
		return -EINVAL;
	}
	mutex_lock(&st->lock);
	st->rate_hz = val;
	mutex_unlock(&st->lock);
	return 0;
}

static const struct iio_info rpms_emg_info = {
	.read_raw = rpms_emg_read_raw,
	.write_raw = rpms_emg_write_raw,
};

/* ---- configfs: the waveform and two counters ---------------------------- */

static struct rpms_emg *rpms_emg_from_item(struct config_item *item)
{
	return iio_priv(to_iio_sw_device(item)->device);
}

static ssize_t rpms_emg_waveform_write(struct config_item *item, const void *data, size_t len)
{
	struct rpms_emg *st = rpms_emg_from_item(item);
	size_t frames = len / RPMS_EMG_FRAME_BYTES;
	s16 *wave, *old;
	size_t i;

	if (!len || len % RPMS_EMG_FRAME_BYTES) {
		return -EINVAL;
	}
	wave = kvmalloc_array(frames * RPMS_EMG_CHANNELS, sizeof(*wave), GFP_KERNEL);
	if (!wave) {
		return -ENOMEM;
	}
	for (i = 0; i < frames * RPMS_EMG_CHANNELS; i++) {
		wave[i] = (s16)get_unaligned_le16((const u8 *)data + i * sizeof(s16));
	}
	mutex_lock(&st->lock);
	old = st->wave;
	st->wave = wave;
	st->frames = frames;
	st->pos = 0;
	mutex_unlock(&st->lock);
	kvfree(old);
	return len;
}

/* configfs asks for the size first (@data NULL), then for the bytes. */
static ssize_t rpms_emg_waveform_read(struct config_item *item, void *data, size_t len)
{
	struct rpms_emg *st = rpms_emg_from_item(item);
	size_t n, i;

	mutex_lock(&st->lock);
	n = st->frames * RPMS_EMG_CHANNELS;
	if (data) {
		n = min(n, len / sizeof(s16));
		for (i = 0; i < n; i++) {
			put_unaligned_le16((u16)st->wave[i], (u8 *)data + i * sizeof(s16));
		}
	}
	mutex_unlock(&st->lock);
	return n * sizeof(s16);
}

CONFIGFS_BIN_ATTR(rpms_emg_, waveform, NULL, RPMS_EMG_MAX_BYTES);

static ssize_t rpms_emg_frames_show(struct config_item *item, char *page)
{
	struct rpms_emg *st = rpms_emg_from_item(item);
	size_t frames;

	mutex_lock(&st->lock);
	frames = st->frames;
	mutex_unlock(&st->lock);
	return sprintf(page, "%zu\n", frames);
}

static ssize_t rpms_emg_pushed_show(struct config_item *item, char *page)
{
	struct rpms_emg *st = rpms_emg_from_item(item);
	u64 pushed;

	mutex_lock(&st->lock);
	pushed = st->pushed;
	mutex_unlock(&st->lock);
	return sprintf(page, "%llu\n", (unsigned long long)pushed);
}

CONFIGFS_ATTR_RO(rpms_emg_, frames);
CONFIGFS_ATTR_RO(rpms_emg_, pushed);

static struct configfs_attribute *rpms_emg_attrs[] = {
	&rpms_emg_attr_frames,
	&rpms_emg_attr_pushed,
	NULL,
};

static struct configfs_bin_attribute *rpms_emg_bin_attrs[] = {
	&rpms_emg_attr_waveform,
	NULL,
};

/* The last reference to the configfs item: after remove, so free it here. */
static void rpms_emg_item_release(struct config_item *item)
{
	kfree(to_iio_sw_device(item));
}

static struct configfs_item_operations rpms_emg_item_ops = {
	.release = rpms_emg_item_release,
};

static const struct config_item_type rpms_emg_type = {
	.ct_item_ops = &rpms_emg_item_ops,
	.ct_attrs = rpms_emg_attrs,
	.ct_bin_attrs = rpms_emg_bin_attrs,
	.ct_owner = THIS_MODULE,
};

/* ---- the software device ------------------------------------------------ */

static struct iio_sw_device *rpms_emg_probe(const char *name)
{
	struct iio_sw_device *swd;
	struct iio_dev *indio_dev;
	struct rpms_emg *st;
	int ret;

	swd = kzalloc(sizeof(*swd), GFP_KERNEL);
	if (!swd) {
		return ERR_PTR(-ENOMEM);
	}
	indio_dev = iio_device_alloc(NULL, sizeof(*st));
	if (!indio_dev) {
		ret = -ENOMEM;
		goto err_free_swd;
	}
	st = iio_priv(indio_dev);
	mutex_init(&st->lock);
	st->rate_hz = RPMS_EMG_DEFAULT_HZ;
	indio_dev->name = kstrdup(name, GFP_KERNEL);
	if (!indio_dev->name) {
		ret = -ENOMEM;
		goto err_free_dev;
	}
	indio_dev->channels = rpms_emg_channels;
	indio_dev->num_channels = ARRAY_SIZE(rpms_emg_channels) - (rpms_emg_timestamp ? 0 : 1);
	indio_dev->info = &rpms_emg_info;
	indio_dev->modes = INDIO_DIRECT_MODE;
	ret = iio_triggered_buffer_setup(indio_dev, iio_pollfunc_store_time,
					 rpms_emg_trigger_handler, &rpms_emg_buffer_ops);
	if (ret < 0) {
		goto err_free_name;
	}
	ret = iio_device_register(indio_dev);
	if (ret < 0) {
		goto err_buffer;
	}
	swd->device = indio_dev;
	iio_swd_group_init_type_name(swd, name, &rpms_emg_type);
	return swd;

err_buffer:
	iio_triggered_buffer_cleanup(indio_dev);
err_free_name:
	kfree(indio_dev->name);
err_free_dev:
	iio_device_free(indio_dev);
err_free_swd:
	kfree(swd);
	return ERR_PTR(ret);
}

static int rpms_emg_remove(struct iio_sw_device *swd)
{
	struct iio_dev *indio_dev = swd->device;
	struct rpms_emg *st = iio_priv(indio_dev);

	iio_device_unregister(indio_dev);
	iio_triggered_buffer_cleanup(indio_dev);
	kvfree(st->wave);
	kfree(indio_dev->name);
	iio_device_free(indio_dev);
	return 0;
}

static const struct iio_sw_device_ops rpms_emg_ops = {
	.probe = rpms_emg_probe,
	.remove = rpms_emg_remove,
};

static struct iio_sw_device_type rpms_emg_device_type = {
	.name = "rpms_emg",
	.owner = THIS_MODULE,
	.ops = &rpms_emg_ops,
};

module_iio_sw_device_driver(rpms_emg_device_type);

MODULE_DESCRIPTION("Test-only EMG waveform player for rpmsd's VM rig");
MODULE_LICENSE("GPL");
