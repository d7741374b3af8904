"""The words the builder shows for the rule vocabulary: kinds, operators, events, columns.

Plain tables, shared by the widgets (option labels), the warehouse choices (campaign
channels) and the sentences that read a rule back (:mod:`.display`).
"""

KIND_LABELS = {"profile": "Profile", "consent": "Consent", "orders": "Orders",
               "events": "Events", "sequence": "Sequence", "campaign": "Campaign engagement",
               "score": "Predictive score", "rfm": "RFM group", "segment": "Member of segment"}
GROUP_LABELS = {"all": "All", "any": "Any"}
OPERATOR_LABELS = {
    "equals": "is", "not_equals": "is not", "in": "is any of", "not_in": "is none of",
    "contains": "contains", "starts_with": "starts with", "ends_with": "ends with",
    "is_set": "is set", "not_set": "is not set", "before": "is before", "after": "is after",
    "between": "is between", "within_last_days": "is in the last", "more_than_days_ago":
    "is more than", "gt": "is more than", "gte": "is at least", "lt": "is less than",
    "lte": "is at most", "at_least": "at least", "at_most": "at most", "exactly": "exactly",
}
SYMBOLS = {"equals": "=", "not_equals": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
           "at_least": "at least", "at_most": "at most", "exactly": "exactly"}
METRIC_LABELS = {"count": "Number of orders", "revenue": "Revenue",
                 "average_order_value": "Average order value",
                 "first_order_date": "First order date", "last_order_date": "Last order date"}
EVENT_LABELS = {"page_view": "Viewed a page", "product_view": "Viewed a product",
                "add_to_cart": "Added to cart", "checkout_start": "Started checkout",
                "order": "Placed an order"}
CHANNEL_LABELS = {"email": "E-mail", "sms": "SMS"}
CONSENT_LABELS = {"subscribed": "is subscribed", "unsubscribed": "has unsubscribed",
                  "never_subscribed": "never subscribed"}
ACTION_LABELS = {"received": "Received", "opened": "Opened", "clicked": "Clicked"}
WINDOW_LABELS = {"all_time": "all time", "last_days": "in the last",
                 "more_than_days_ago": "more than", "between": "between"}
SCORE_LABELS = {"gte": "score at least", "top_percent": "in the top %"}
SEQUENCE_LABELS = {True: "and then", False: "and then did not"}
PREVIEW_LABELS = {"customer_id": "Customer id", "email": "E-mail", "country": "Country",
                  "acquisition_channel": "Acquisition channel", "signed_up_at": "Signed up",
                  "purchases": "Purchases", "revenue": "Revenue",
                  "last_purchase_at": "Last purchase", "rfm_group": "RFM group"}
