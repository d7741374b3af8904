"""The demo store generator: a deterministic, realistic e-commerce export with known truth.

``generate_store(out_dir, customers=5000, seed=0, dirty_share=0.01, progress=None)``
writes, for 2023-01-01 to 2024-12-31 (``as_of`` 2024-12-31 23:59:59)::

    customers.csv            customer_id,email,phone,country,acquisition_channel,
                             signed_up_at,attributes,updated_at
    products.csv             product_id,name,category,price,updated_at
    campaigns.csv            campaign_id,name,channel,sent_at,variants,control_variant,
                             updated_at
    consent_events.ndjson    consent_event_id,customer_id,channel,status,occurred_at,source
    orders.csv               order_id,customer_id,is_guest,ordered_at,kind,status,currency,
                             subtotal,discount,total,updated_at
    order_items.parquet      order_id,line_number,product_id,quantity,unit_price,discount
    events/part-NNNNN.parquet  event_id,customer_id,session_id,event_type,occurred_at,
                             product_id,properties
    campaign_sends.parquet   send_id,campaign_id,customer_id,variant,sent_at,opened_at,
                             clicked_at,unsubscribed_at
    truth/customers.parquet  latent purchase rate, churn and other traits per customer
    truth/campaigns.json     true campaign-induced conversion and A/B effects
    manifest.json            seed, size, as_of, rows per file, dirty rows per file and kind

Timestamps are ``YYYY-MM-DD HH:MM:SS`` text everywhere (Parquet too, so dirty values
fit). Dirty rows are *added* to otherwise complete clean data: see :mod:`.dirt` for the
rule and the defect kinds, and the manifest for the exact counts.
"""

from etl.generate.store import generate_store

__all__ = ["generate_store"]
